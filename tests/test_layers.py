"""SIREN initialisation and activation statistics (METHODS.md), and the Fourier-feature encoding."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from models.fields import FieldConfig, build_field, count_parameters
from models.activations import Activation
from models.fields import ActivatedLayer
from models.layers import FourierFeatures, siren_weight_bound


def _uniform_checks(values: torch.Tensor, bound: float, rel_var_tol: float) -> None:
    values = values.detach().double().flatten()
    assert values.abs().max().item() <= bound * (1 + 1e-6)
    # a U(-b, b) sample fills its range and has variance b^2 / 3
    assert values.abs().max().item() > 0.95 * bound
    assert values.var().item() == pytest.approx(bound ** 2 / 3, rel=rel_var_tol)
    assert abs(values.mean().item()) < 0.05 * bound


def test_weight_bound_formula():
    assert siren_weight_bound(2, 30.0, is_first=True) == pytest.approx(0.5)
    assert siren_weight_bound(256, 30.0, is_first=False) == pytest.approx(math.sqrt(6 / 256) / 30)
    assert siren_weight_bound(256, 10.0, is_first=False) == pytest.approx(math.sqrt(6 / 256) / 10)


def test_first_layer_init_uniform_one_over_fan_in():
    torch.manual_seed(0)
    layer = ActivatedLayer(4, 16384, Activation("siren", w0=30.0), is_first=True)  # 65536 weights
    _uniform_checks(layer.linear.weight, 1.0 / 4, rel_var_tol=0.03)


def test_hidden_layer_init_scaled_by_w0():
    torch.manual_seed(1)
    for w0 in (30.0, 7.5):
        layer = ActivatedLayer(256, 256, Activation("siren", w0=w0), is_first=False)
        _uniform_checks(layer.linear.weight, math.sqrt(6 / 256) / w0, rel_var_tol=0.03)


def test_biases_keep_default_linear_init():
    torch.manual_seed(5)
    reference = nn.Linear(64, 4096)
    torch.manual_seed(5)
    layer = ActivatedLayer(64, 4096, Activation(), is_first=False)
    # nn.Linear draws the weight, then the bias; SIREN init only redraws the weight afterwards
    assert torch.equal(layer.linear.bias, reference.bias)
    _uniform_checks(layer.linear.bias, 1 / math.sqrt(64), rel_var_tol=0.08)
    torch.manual_seed(5)
    first = ActivatedLayer(64, 4096, Activation(), is_first=True)
    assert torch.equal(first.linear.bias, reference.bias)


def test_output_layer_of_field_has_siren_init():
    model = build_field(FieldConfig(kind="siren", width=128, depth=2, w0=30.0))
    assert model.output.weight.abs().max().item() <= math.sqrt(6 / 128) / 30 * (1 + 1e-6)
    assert model.hidden[0].is_first and not model.hidden[1].is_first
    assert model.hidden[0].linear.weight.abs().max().item() <= 1 / 2


def test_sine_layer_forward_is_sin_w0_linear():
    torch.manual_seed(2)
    layer = ActivatedLayer(3, 5, Activation("siren", w0=12.0), is_first=False)
    x = torch.randn(7, 3)
    assert torch.allclose(layer(x), torch.sin(12.0 * layer.linear(x)), atol=1e-6)


def test_activation_statistics_do_not_collapse_through_depth():
    model = build_field(FieldConfig(kind="siren", width=512, depth=6, seed=3))
    x = torch.rand(4096, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    stds = []
    h = x
    with torch.no_grad():
        for i, layer in enumerate(model.hidden):
            pre = layer.activation.w0 * layer.linear(h)
            h = layer(h)
            if i > 0:
                # hidden pre-activations stay O(1) (SIREN's point); no growth or decay with depth
                assert 0.8 < pre.std().item() < 2.0, (i, pre.std().item())
            stds.append(h.std().item())
            assert abs(h.mean().item()) < 0.1
    for i, s in enumerate(stds):
        assert s == pytest.approx(1 / math.sqrt(2), abs=0.06), (i, stds)
    assert abs(stds[-1] - stds[1]) < 0.05


def test_fourier_features_b_statistics_and_buffer():
    enc = FourierFeatures(2, 8192, sigma=10.0, generator=torch.Generator().manual_seed(0))
    assert enc.B.shape == (8192, 2)
    assert enc.B.std().item() == pytest.approx(10.0, rel=0.03)
    assert abs(enc.B.mean().item()) < 0.3
    assert "B" in dict(enc.named_buffers())
    assert list(enc.parameters()) == []
    assert "B" in enc.state_dict()
    assert not enc.B.requires_grad


def test_fourier_features_output_shape_and_unit_circle():
    m = 16
    enc = FourierFeatures(2, m, sigma=3.0, generator=torch.Generator().manual_seed(1))
    assert enc.out_features == 2 * m
    x = torch.rand(50, 2) * 2 - 1
    out = enc(x)
    assert out.shape == (50, 2 * m)
    # each frequency contributes a (cos, sin) pair on the unit circle
    assert torch.allclose(out[:, :m] ** 2 + out[:, m:] ** 2, torch.ones(50, m), atol=1e-5)
    # [-1, 1] is mapped to [0, 1]: the corner -1 has phase 0
    corner = enc(-torch.ones(1, 2))
    assert torch.allclose(corner[:, :m], torch.ones(1, m), atol=1e-6)
    assert torch.allclose(corner[:, m:], torch.zeros(1, m), atol=1e-6)


def test_fourier_features_generator_is_deterministic():
    a = FourierFeatures(2, 8, 5.0, generator=torch.Generator().manual_seed(4))
    b = FourierFeatures(2, 8, 5.0, generator=torch.Generator().manual_seed(4))
    c = FourierFeatures(2, 8, 5.0, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a.B, b.B)
    assert not torch.equal(a.B, c.B)


# -- fields (models/fields.py) --------------------------------------------------------------------------


def _state(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("kind", ["siren", "relu", "fourier"])
def test_same_config_and_seed_give_identical_weights(kind):
    config = FieldConfig(kind=kind, width=16, depth=2, fourier_frequencies=8, seed=7)
    a, b = _state(build_field(config)), _state(build_field(config))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = _state(build_field(FieldConfig(kind=kind, width=16, depth=2, fourier_frequencies=8, seed=8)))
    assert all(not torch.equal(a[k], other[k]) for k in a if k.endswith("weight") or k.endswith("B"))


def test_building_a_field_leaves_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    build_field(FieldConfig(kind="fourier", width=8, depth=1, fourier_frequencies=4))
    build_field(FieldConfig(kind="siren", width=8, depth=1))
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize("kwargs", [
    {"kind": "tanh"}, {"width": 0}, {"depth": 0}, {"in_features": 0}, {"out_features": 0},
    {"fourier_frequencies": 0}, {"w0": 0.0}, {"w0": -30.0}, {"fourier_sigma": 0.0}, {"fourier_sigma": -1.0},
])
def test_field_config_validation(kwargs):
    with pytest.raises(ValueError):
        FieldConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"w0": float("nan")}, {"w0": float("inf")}, {"fourier_sigma": float("nan")}])
def test_field_config_rejects_non_finite_frequencies(kwargs):
    # a NaN w0 passes "w0 <= 0" and builds a field whose every output is NaN
    with pytest.raises(ValueError):
        FieldConfig(**kwargs)


def test_count_parameters_matches_hand_count():
    siren = build_field(FieldConfig(kind="siren", in_features=2, out_features=1, width=8, depth=2))
    assert count_parameters(siren) == (2 * 8 + 8) + (8 * 8 + 8) + (8 * 1 + 1)
    relu = build_field(FieldConfig(kind="relu", in_features=2, out_features=3, width=5, depth=3))
    assert count_parameters(relu) == (2 * 5 + 5) + 2 * (5 * 5 + 5) + (5 * 3 + 3)
    fourier = build_field(FieldConfig(kind="fourier", in_features=2, out_features=1, width=8, depth=1,
                                      fourier_frequencies=4))
    # the 4x2 Fourier matrix is a buffer, not a parameter; the encoding has 2 * 4 features
    assert count_parameters(fourier) == (8 * 8 + 8) + (8 * 1 + 1)
    assert "encoding.B" in fourier.state_dict()


@pytest.mark.parametrize("kind", ["siren", "relu", "fourier"])
def test_field_shapes_and_layer_count(kind):
    config = FieldConfig(kind=kind, in_features=2, out_features=3, width=8, depth=3, fourier_frequencies=4)
    model = build_field(config)
    assert model(torch.rand(10, 2) * 2 - 1).shape == (10, 3)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == config.depth + 1


def test_field_config_dict_round_trip_and_unknown_keys():
    config = FieldConfig(kind="fourier", width=12, depth=2, w0=20.0, fourier_sigma=4.0, seed=3)
    assert FieldConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError, match="bogus"):
        FieldConfig.from_dict({**config.to_dict(), "bogus": 1})
