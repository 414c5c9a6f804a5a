"""FINER++ activations (models/activations.py) and the fields built on them (models/fields.py): formulas,
gradient convention, fused affine maps, initialisation (weight bounds, bias range k), complex-valued
fields, checkpoints, real-only fields, the first-layer view and the high-frequency energy metric.

Everything is tiny (widths <= 32, signals of 16-32 px) and runs on the CPU with one thread.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from models.activations import (ACTIVATION_NAMES, COMPLEX_ACTIVATIONS, Activation, canonical_name,
                                init_first_bias_, uniform_)
from models.checkpoint import load_field, save_field
from models.fields import FieldConfig, build_field, count_parameters
from models.first_layer import first_layer_of, first_layer_view
from models.local_global import LocalGlobalConfig, LocalGlobalField
from models.metrics import HF_CUTOFF, high_frequency_energy
from models.signals import load_signal
from models.streamable import StreamableConfig, StreamableField

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REAL_ACTIVATIONS = tuple(n for n in ACTIVATION_NAMES if n not in COMPLEX_ACTIVATIONS)
W0, S0_GAUSS, S0_WAVELET, OMEGA_W, WF_GAUSS, WF_WAVELET = 30.0, 30.0, 10.0, 20.0, 3.0, 5.0
"""The documented defaults (module docstring of models/activations.py and the reference code)."""


@functools.lru_cache(maxsize=None)
def camera(size: int):
    return load_signal("camera", size)


def random_z(shape=(257,), seed=0, scale=1.5, dtype=torch.float64) -> torch.Tensor:
    """Pre-activations in (-scale, scale), including some near zero and both signs."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1).mul(scale).to(dtype)


def random_complex_z(shape=(257,), seed=0, scale=1.0) -> torch.Tensor:
    return torch.complex(random_z(shape, seed, scale), random_z(shape, seed + 100, scale))


# -- formulas written out independently of the module ---------------------------------------------------------

def vp(z: torch.Tensor) -> torch.Tensor:
    """(|z| + 1) z, real and imaginary parts separately for complex z."""
    if z.is_complex():
        return torch.complex(z.real * (z.real.abs() + 1), z.imag * (z.imag.abs() + 1))
    return z * (z.abs() + 1)


def gabor(z: torch.Tensor, omega: float, scale: float) -> torch.Tensor:
    z = z if z.is_complex() else torch.complex(z, torch.zeros_like(z))
    return torch.exp(1j * omega * z - (scale ** 2) * (z.real ** 2 + z.imag ** 2))


FORMULAS = {
    "siren": lambda z: torch.sin(W0 * z),
    "finer": lambda z: torch.sin(W0 * vp(z)),
    "gauss": lambda z: torch.exp(-(S0_GAUSS * z) ** 2),
    "finer-gauss": lambda z: torch.exp(-((S0_GAUSS / WF_GAUSS) * torch.sin(WF_GAUSS * vp(z))) ** 2),
    "wire": lambda z: gabor(z, OMEGA_W, S0_WAVELET),
    "finer-wavelet": lambda z: gabor(torch.sin(WF_WAVELET * vp(z)), OMEGA_W / WF_WAVELET, S0_WAVELET / WF_WAVELET),
}


# -- 1. formulas and the gradient convention ------------------------------------------------------------------

@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_each_activation_matches_its_formula_on_real_inputs(name):
    act = Activation(name)
    # Gauss-type activations vanish quickly: keep z small enough that the values are not all ~0
    z = random_z(scale=0.1 if "gauss" in name or name == "wire" else 1.5)
    out, expected = act(z), FORMULAS[name](z)
    assert out.is_complex() == (name in COMPLEX_ACTIVATIONS) == act.is_complex
    assert out.shape == z.shape
    assert expected.abs().max() > 0.5 and expected.abs().min() < 0.99  # the comparison is not trivial
    torch.testing.assert_close(out, expected.to(out.dtype), rtol=1e-12, atol=1e-12)
    # float32 agrees too (the working precision)
    torch.testing.assert_close(act(z.float()), expected.to(act(z.float()).dtype), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", COMPLEX_ACTIVATIONS)
def test_complex_activations_match_their_formula_on_complex_inputs(name):
    act = Activation(name)
    z = random_complex_z(scale=0.3)
    out = act(z)
    assert out.dtype == torch.complex128
    torch.testing.assert_close(out, FORMULAS[name](z), rtol=1e-12, atol=1e-12)
    # the variable-periodic factor treats the real and imaginary parts separately: |z| + 1 of the complex
    # modulus would give something else
    if name == "finer-wavelet":
        modulus = torch.sin(WF_WAVELET * (z.abs() + 1) * z)
        assert not torch.allclose(out, gabor(modulus, OMEGA_W / WF_WAVELET, S0_WAVELET / WF_WAVELET))


def test_parameters_change_the_formulas_and_sine_is_an_alias():
    z = random_z(scale=0.2)
    torch.testing.assert_close(Activation("siren", w0=7.0)(z), torch.sin(7.0 * z))
    torch.testing.assert_close(Activation("gauss", scale=4.0)(z), torch.exp(-(4.0 * z) ** 2))
    torch.testing.assert_close(Activation("finer-gauss", scale=6.0, omega_f=2.0)(z),
                               torch.exp(-((6.0 / 2.0) * torch.sin(2.0 * vp(z))) ** 2))
    torch.testing.assert_close(Activation("wire", scale=3.0, wavelet_omega=5.0)(z), gabor(z, 5.0, 3.0))
    assert Activation("sine").name == "siren" and canonical_name("sine") == "siren"
    with pytest.raises(ValueError, match="unknown activation 'tanh'"):
        Activation("tanh")
    for key in ("w0", "scale", "wavelet_omega", "omega_f"):
        for bad in (0.0, -1.0, math.nan, math.inf):
            with pytest.raises(ValueError, match=f"activation {key} must be a positive finite number"):
                Activation("finer", **{key: bad})


def test_finer_gradient_treats_the_variable_periodic_factor_as_a_constant():
    """d/dz sin(w0 (|z|+1) z) with |z|+1 detached is w0 (|z|+1) cos(w0 (|z|+1) z), not the exact
    w0 (2|z|+1) cos(...)."""
    z = random_z(scale=1.0).requires_grad_(True)
    (grad,) = torch.autograd.grad(Activation("finer")(z).sum(), z)
    zd = z.detach()
    factor = zd.abs() + 1
    convention = W0 * factor * torch.cos(W0 * factor * zd)
    exact = W0 * (2 * zd.abs() + 1) * torch.cos(W0 * factor * zd)
    torch.testing.assert_close(grad, convention, rtol=1e-10, atol=1e-9)
    away = zd.abs() > 0.1
    assert (grad[away] - exact[away]).abs().max() > 1.0  # really the detached convention, not the exact one


def test_finer_gauss_gradient_treats_the_variable_periodic_factor_as_a_constant():
    z = random_z(scale=1.0, seed=3).requires_grad_(True)
    (grad,) = torch.autograd.grad(Activation("finer-gauss")(z).sum(), z)
    zd = z.detach()
    c = zd.abs() + 1  # a constant in backward
    a = S0_GAUSS / WF_GAUSS
    s, co = torch.sin(WF_GAUSS * c * zd), torch.cos(WF_GAUSS * c * zd)
    convention = torch.exp(-(a * s) ** 2) * (-2 * a * a * s * co * WF_GAUSS * c)
    torch.testing.assert_close(grad, convention, rtol=1e-9, atol=1e-9)
    exact = convention * (2 * zd.abs() + 1) / c
    assert (grad - exact).abs().max() > 0.1


def test_finer_wavelet_gradient_of_the_real_part_uses_the_detached_factor():
    z = random_z(scale=0.8, seed=5).requires_grad_(True)
    (grad,) = torch.autograd.grad(Activation("finer-wavelet")(z).real.sum(), z)
    zd = z.detach()
    c = zd.abs() + 1
    u = torch.sin(WF_WAVELET * c * zd)
    A, B = OMEGA_W / WF_WAVELET, S0_WAVELET / WF_WAVELET
    f = torch.exp(1j * A * u - (B * u) ** 2)
    convention = (f * (1j * A - 2 * B * B * u)).real * WF_WAVELET * c * torch.cos(WF_WAVELET * c * zd)
    torch.testing.assert_close(grad, convention, rtol=1e-9, atol=1e-9)


# -- 2. fused affine map ------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype, tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)], ids=["f64", "f32"])
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_fused_equals_activation_of_the_affine_map(name, dtype, tol):
    """fused(inp, W.T, b) == act(inp @ W.T + b), for [N, a] inputs and batched [K, N, a] ones (real inputs:
    every activation's first layer, and every layer of the real ones)."""
    act = Activation(name)
    g = torch.Generator().manual_seed(1)
    fan_in, fan_out, rows, models = 5, 7, 33, 3
    bound = act.weight_bound(fan_in, is_first=False) * 3
    inp = (torch.rand(rows, fan_in, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    weight = ((torch.rand(fan_out, fan_in, generator=g, dtype=torch.float64) * 2 - 1) * bound).to(dtype)
    bias = ((torch.rand(fan_out, generator=g, dtype=torch.float64) * 2 - 1) * bound).to(dtype)
    out = act.fused(inp, weight.t(), bias)
    expected = act(inp @ weight.t() + bias)
    assert out.shape == (rows, fan_out) and out.dtype == expected.dtype
    torch.testing.assert_close(out, expected, rtol=tol, atol=tol)

    inp3 = (torch.rand(models, rows, fan_in, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    weight3 = ((torch.rand(models, fan_out, fan_in, generator=g, dtype=torch.float64) * 2 - 1) * bound).to(dtype)
    bias3 = ((torch.rand(models, 1, fan_out, generator=g, dtype=torch.float64) * 2 - 1) * bound).to(dtype)
    out3 = act.fused(inp3, weight3.transpose(1, 2), bias3)
    expected3 = act(torch.bmm(inp3, weight3.transpose(1, 2)) + bias3)
    assert out3.shape == (models, rows, fan_out)
    torch.testing.assert_close(out3, expected3, rtol=tol, atol=tol)
    # each slice of the batched call is the 2-D call on that model's weights
    for k in range(models):
        torch.testing.assert_close(out3[k], act.fused(inp3[k], weight3[k].t(), bias3[k, 0]), rtol=tol, atol=tol)


def test_fused_gradients_match_the_unfused_ones():
    """SIREN folds w0 into the matmul: the gradients must still be those of sin(w0 (x W^T + b))."""
    for name in REAL_ACTIVATIONS:
        act = Activation(name)
        g = torch.Generator().manual_seed(2)
        inp = torch.rand(9, 3, generator=g, dtype=torch.float64) * 2 - 1
        weight = ((torch.rand(4, 3, generator=g, dtype=torch.float64) * 2 - 1) * 0.3).requires_grad_(True)
        bias = ((torch.rand(4, generator=g, dtype=torch.float64) * 2 - 1) * 0.3).requires_grad_(True)
        fused = torch.autograd.grad(act.fused(inp, weight.t(), bias).sum(), (weight, bias))
        plain = torch.autograd.grad(act(inp @ weight.t() + bias).sum(), (weight, bias))
        for a, b in zip(fused, plain):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=name)


# -- 3. the SIREN limit ----------------------------------------------------------------------------------------

def test_finer_and_siren_fields_of_one_seed_start_bit_identical():
    for seed in (0, 7):
        finer = build_field(FieldConfig(kind="finer", width=16, depth=3, seed=seed))
        siren = build_field(FieldConfig(kind="siren", width=16, depth=3, seed=seed))
        a, b = finer.state_dict(), siren.state_dict()
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), key
    # and a different seed really gives different weights
    other = build_field(FieldConfig(kind="siren", width=16, depth=3, seed=1)).state_dict()
    assert not torch.equal(other["hidden.0.linear.weight"], siren.state_dict()["hidden.0.linear.weight"])


def test_finer_tends_to_siren_as_pre_activations_shrink():
    """With z -> eps z and w0 -> w0 / eps, sin(w0/eps (eps|z| + 1) eps z) - sin(w0 z) = O(w0 eps z^2):
    the gap to SIREN shrinks linearly in eps."""
    z = random_z(scale=1.0, seed=11)
    gaps = []
    for eps in (1e-1, 1e-2, 1e-3):
        finer = Activation("finer", w0=W0 / eps)(eps * z)
        siren = Activation("siren", w0=W0 / eps)(eps * z)
        gap = (finer - siren).abs().max().item()
        assert gap <= W0 * eps * (z.abs().max().item() ** 2) + 1e-9  # |sin a - sin b| <= |a - b|
        gaps.append(gap)
    # each tenfold shrink of eps shrinks the gap roughly tenfold (once the phase shift is small)
    assert 5 < gaps[1] / gaps[2] < 15, gaps
    assert gaps[0] / gaps[1] > 2, gaps
    assert gaps[2] < 0.05
    # the SIREN side is the same function at every eps
    torch.testing.assert_close(Activation("siren", w0=W0 / 1e-3)(1e-3 * z), torch.sin(W0 * z), rtol=1e-9, atol=1e-9)


# -- 4. bias range k ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["finer", "gauss", "wire"])
def test_fields_differing_only_in_k_share_every_other_parameter(kind):
    def params(k):
        return build_field(FieldConfig(kind=kind, width=16, depth=3, seed=5, bias_range=k)).state_dict()

    fields = {k: params(k) for k in (None, 0.0, 1.0, 2.0, 10.0)}
    keys = list(fields[None])
    assert "hidden.0.linear.bias" in keys
    for key in keys:
        if key == "hidden.0.linear.bias":
            continue
        for k, state in fields.items():
            assert torch.equal(state[key], fields[None][key]), (key, k)
    unit = fields[1.0]["hidden.0.linear.bias"]  # the U(-1, 1) draw
    assert unit.abs().max() <= 1.0 and unit.abs().max() > 0.5 and (unit > 0).any() and (unit < 0).any()
    assert torch.equal(fields[2.0]["hidden.0.linear.bias"], 2.0 * unit)
    assert torch.equal(fields[10.0]["hidden.0.linear.bias"], 10.0 * unit)
    assert torch.equal(fields[0.0]["hidden.0.linear.bias"], torch.zeros_like(unit))
    # k = None keeps nn.Linear's default bias init U(-1/sqrt(2), 1/sqrt(2)), a different draw
    default = fields[None]["hidden.0.linear.bias"]
    assert default.abs().max() <= 1 / math.sqrt(2) and not torch.equal(default, unit)
    assert not torch.allclose(default / default.abs().max(), unit / unit.abs().max())


def test_k_scales_the_first_bias_of_a_field_and_the_draw_is_repeatable():
    first = build_field(FieldConfig(kind="finer", width=32, depth=2, seed=3, bias_range=5.0))
    bias = first.hidden[0].linear.bias
    assert bias.abs().max() <= 5.0 and bias.abs().max() > 3.0
    again = build_field(FieldConfig(kind="finer", width=32, depth=2, seed=3, bias_range=5.0))
    assert torch.equal(again.hidden[0].linear.bias, bias)
    # only the first layer's bias moves with k; later layers keep their own init
    later = build_field(FieldConfig(kind="finer", width=32, depth=2, seed=3, bias_range=0.0)).hidden[1].linear.bias
    assert torch.equal(later, first.hidden[1].linear.bias)


@pytest.mark.parametrize("bad", [-1.0, -1e-9, math.nan, math.inf, -math.inf])
def test_invalid_k_is_refused_with_a_clear_message(bad):
    with pytest.raises(ValueError, match=r"bias range k must be a finite number >= 0, got"):
        FieldConfig(kind="finer", bias_range=bad)
    with pytest.raises(ValueError, match=r"bias range k must be a finite number >= 0"):
        init_first_bias_(torch.zeros(4), bad)


def test_init_first_bias_and_uniform_draw_from_the_given_generator():
    a, b = torch.empty(64), torch.empty(64)
    init_first_bias_(a, 3.0, torch.Generator().manual_seed(4))
    init_first_bias_(b, 1.0, torch.Generator().manual_seed(4))
    assert torch.equal(a, 3.0 * b) and b.abs().max() <= 1.0
    c = uniform_(torch.empty(500, dtype=torch.cfloat), 0.25, torch.Generator().manual_seed(0))
    assert c.real.abs().max() <= 0.25 and c.imag.abs().max() <= 0.25
    assert not torch.equal(c.real, c.imag) and c.real.abs().max() > 0.2 and c.imag.abs().max() > 0.2


# -- 5. weight bounds -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("fan_in", [2, 16, 32])
def test_weight_bounds_follow_each_activations_reference_init(fan_in):
    hidden = math.sqrt(6 / fan_in)
    expected = {  # (first layer, later layers)
        "siren": (1 / fan_in, hidden / W0),
        "finer": (1 / fan_in, hidden / W0),
        "gauss": (1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in)),
        "wire": (1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in)),
        "finer-gauss": (1 / fan_in, hidden / WF_GAUSS),
        "finer-wavelet": (1 / fan_in, hidden / OMEGA_W),
    }
    assert set(expected) == set(ACTIVATION_NAMES)
    for name, (first, later) in expected.items():
        act = Activation(name)
        assert act.weight_bound(fan_in, is_first=True) == pytest.approx(first, rel=1e-12), name
        assert act.weight_bound(fan_in, is_first=False) == pytest.approx(later, rel=1e-12), name
    # the factors follow the activation's own parameters
    assert Activation("siren", w0=10).weight_bound(fan_in, False) == pytest.approx(hidden / 10)
    assert Activation("finer-gauss", omega_f=2).weight_bound(fan_in, False) == pytest.approx(hidden / 2)
    assert Activation("finer-wavelet", wavelet_omega=8).weight_bound(fan_in, False) == pytest.approx(hidden / 8)


@pytest.mark.parametrize("kind", ACTIVATION_NAMES)
def test_built_fields_respect_the_weight_bounds(kind):
    config = FieldConfig(kind=kind, width=32, depth=3, seed=2)
    model = build_field(config)
    act = config.activation()
    layers = [(layer.linear.weight, layer.linear.in_features, layer.is_first) for layer in model.hidden]
    layers.append((model.output.weight, model.output.in_features, False))
    for i, (weight, fan_in, is_first) in enumerate(layers):
        bound = act.weight_bound(fan_in, is_first)
        parts = [weight.real, weight.imag] if weight.is_complex() else [weight]
        for part in parts:
            top = part.detach().abs().max().item()
            assert top <= bound * (1 + 1e-6), (kind, i, top, bound)
            assert top > 0.7 * bound, (kind, i, top, bound)  # the full range is used, not a narrower init
        assert is_first == (i == 0)


# -- 6. complex-valued fields -------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", COMPLEX_ACTIVATIONS)
@pytest.mark.parametrize("width", [16, 32])
def test_complex_fields_have_complex_hidden_layers_and_a_real_output(kind, width):
    config = FieldConfig(kind=kind, width=width, depth=3, seed=1)
    model = build_field(config)
    units = int(width / math.sqrt(2))
    assert config.hidden_width == units
    assert not model.hidden[0].linear.weight.is_complex()  # coordinates are real
    for layer in model.hidden[1:]:
        assert layer.linear.weight.is_complex() and layer.linear.weight.shape == (units, units)
    assert model.output.weight.is_complex()
    # every hidden activation is complex, the field's output is real
    seen = []
    hooks = [layer.register_forward_hook(lambda m, i, o: seen.append(o)) for layer in model.hidden]
    coords = camera(16).coords[:50]
    out = model(coords)
    for hook in hooks:
        hook.remove()
    assert len(seen) == 3 and all(o.is_complex() and o.shape == (50, units) for o in seen)
    assert out.dtype == torch.float32 and out.shape == (50, 1) and torch.isfinite(out).all()
    # complex parameters count twice
    manual = sum(p.numel() * (2 if p.is_complex() else 1) for p in model.parameters())
    assert count_parameters(model) == manual
    assert count_parameters(model) > sum(p.numel() for p in model.parameters())
    real = count_parameters(build_field(FieldConfig(kind="siren", width=width, depth=3)))
    assert abs(count_parameters(model) - real) <= 0.1 * real, (count_parameters(model), real)
    # and gradients reach every (complex) parameter
    out.square().mean().backward()
    for name, p in model.named_parameters():
        grad = torch.view_as_real(p.grad) if p.is_complex() else p.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().max() > 0, name


def test_a_finer_wavelet_checkpoint_reproduces_the_field_bit_for_bit(tmp_path):
    config = FieldConfig(kind="finer-wavelet", width=16, depth=2, seed=6, bias_range=2.0)
    model = build_field(config)
    with torch.no_grad():  # weights that differ from a fresh init, so loading must really read the file
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, dtype=p.dtype, generator=torch.Generator().manual_seed(p.numel())))
    signal = camera(16)
    meta = {"name": signal.name, "kind": "image", "shape": list(signal.shape), "channels": 1,
            "extent": list(signal.extent)}
    save_field(str(tmp_path / "f"), model, config, meta)
    saved = load_field(str(tmp_path / "f"))
    assert saved.config == config and saved.config.bias_range == 2.0
    loaded = saved.model.state_dict()
    for key, value in model.state_dict().items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value), key
    with torch.no_grad():
        before, after = model(signal.coords), saved.model(signal.coords)
    assert torch.equal(before, after) and torch.isfinite(after).all()
    assert not torch.equal(after, build_field(config)(signal.coords).detach())


# -- 7. real-only fields ----------------------------------------------------------------------------------

def _forward_backward(model, coords):
    out = model(coords)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().max() > 0 for g in grads)
    return out


@pytest.mark.parametrize("activation", ["finer-gauss", "gauss", "finer"])
def test_streamable_and_local_global_fields_take_real_activations(activation):
    coords = camera(16).coords
    streamable = StreamableField(StreamableConfig(widths=(4, 8), depth=2, activation=activation), stages=2)
    assert streamable.activation.name == activation
    assert _forward_backward(streamable, coords).shape == (coords.shape[0], 1)
    config = LocalGlobalConfig(partitions=(2, 2), local_width=4, global_width=8, depth=2, activation=activation)
    local_global = LocalGlobalField(config)
    assert local_global.activation.name == activation
    assert _forward_backward(local_global, coords).shape == (coords.shape[0], 1)


def test_local_global_bias_range_scales_the_first_layers_and_crops_stay_bit_identical():
    coords = camera(16).coords
    base = dict(partitions=(2, 2), local_width=4, global_width=8, depth=2, activation="finer")
    default, wide = LocalGlobalField(LocalGlobalConfig(**base)), LocalGlobalField(LocalGlobalConfig(**base, bias_range=6.0))
    for name in ("local_bias_0", "global_biases.0"):
        a, b = default.get_parameter(name).detach(), wide.get_parameter(name).detach()
        # the same U(-1, 1) draws, scaled by k instead of 1/sqrt(fan_in) = 1/sqrt(2)
        torch.testing.assert_close(b, a * 6.0 * math.sqrt(2), rtol=1e-5, atol=1e-6)
        assert b.abs().max() <= 6.0 and b.abs().max() > 3.0
    for name in ("local_bias_1", "local_weight_0", "merge_weight", "global_weights.1"):
        assert torch.equal(default.get_parameter(name), wide.get_parameter(name)), name
    with torch.no_grad():
        full = wide(coords)
        cropped = wide.cropped([0, 3])(coords)
    kept = torch.isfinite(cropped[:, 0])
    assert kept.any() and not kept.all()
    assert torch.equal(cropped[kept], full[kept]), "a crop leaves a FINER++ field's other partitions bit-identical"


@pytest.mark.parametrize("activation", COMPLEX_ACTIVATIONS)
def test_streamable_and_local_global_fields_refuse_complex_activations(activation):
    with pytest.raises(ValueError, match="complex") as info:
        StreamableConfig(widths=(4, 8), activation=activation)
    assert "finer-gauss" in str(info.value)  # names what would work
    with pytest.raises(ValueError, match="complex"):
        LocalGlobalConfig(partitions=(2, 2), local_width=4, global_width=8, activation=activation)
    with pytest.raises(ValueError, match="complex"):
        canonical_name(activation, real_only=True)
    assert StreamableConfig(widths=(4, 8), activation="sine").activation == "siren"


# -- 8. first-layer view ------------------------------------------------------------------------------------

def _view(kind, k, size=16, width=16):
    signal = camera(size)
    model = build_field(FieldConfig(kind=kind, width=width, depth=2, seed=0, bias_range=k))
    act, weight, bias = first_layer_of(model)
    return first_layer_view(act, weight, bias, signal.coords, signal.shape, signal.extent[0]), act, weight, bias


def test_first_layer_view_is_consistent():
    view, act, weight, bias = _view("finer", 1.0)
    assert view.counts.sum() == pytest.approx(1.0, abs=1e-5)
    assert len(view.edges) == len(view.counts) + 1 and np.all(np.diff(view.edges) > 0)
    assert len(view.frequencies) == 16 and np.all(np.diff(view.frequencies) >= 0)
    assert view.low_images.shape == view.high_images.shape == (4, 16, 16)
    assert np.all(view.low_frequencies <= view.high_frequencies.min() + 1e-6)
    assert view.used[0] < view.used[1]
    assert view.curve.shape == view.curve_z.shape
    np.testing.assert_allclose(view.curve, act.curve(view.curve_z), atol=1e-5)
    assert not view.frequencies.flags.writeable
    assert "FINER++" in view.activation


def test_first_layer_view_of_siren_has_the_textbook_frequencies():
    """SIREN neuron sin(w0 (w . x + b)) has w0 |w| / (2 pi) cycles per unit length, 2 * extent per image."""
    view, act, weight, _ = _view("siren", None)
    expected = np.sort((W0 * weight.norm(dim=1) / (2 * math.pi) * 2 * camera(16).extent[0]).numpy())
    np.testing.assert_allclose(view.frequencies, expected, rtol=1e-5)


def test_a_larger_k_gives_finer_higher_effective_frequencies():
    low, *_ = _view("finer", 0.0)
    high, *_ = _view("finer", 10.0)
    assert high.frequencies.max() > 2 * low.frequencies.max()
    assert np.median(high.frequencies) > np.median(low.frequencies)
    assert max(abs(high.used[0]), abs(high.used[1])) > max(abs(low.used[0]), abs(low.used[1]))
    assert first_layer_of(build_field(FieldConfig(kind="relu", width=8, depth=1))) is None


# -- 9. high-frequency energy ---------------------------------------------------------------------------

def test_high_frequency_energy_separates_noise_from_smooth_images():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((32, 32))
    gradient = np.add.outer(np.linspace(0, 1, 32), np.linspace(0, 0.5, 32))
    hf_noise, hf_gradient = high_frequency_energy(noise), high_frequency_energy(gradient)
    assert hf_noise > 0.8 and hf_gradient < 0.2 and hf_noise > hf_gradient
    assert high_frequency_energy(np.full((16, 16), 0.3)) == 0.0
    # channels are averaged
    assert high_frequency_energy(np.stack([noise] * 3, axis=2)) == pytest.approx(hf_noise)


@pytest.mark.parametrize("shape", [(32, 32), (64,)], ids=["image", "curve"])
def test_high_frequency_energy_of_pure_sinusoids(shape):
    n = shape[-1]
    x = np.arange(n)

    def wave(cycles):
        line = np.cos(2 * np.pi * cycles * x / n)
        return np.broadcast_to(line, shape) + 0.5

    below, above = 2 / n, 10 / n  # cycles per sample
    assert below < HF_CUTOFF < above
    assert high_frequency_energy(wave(2)) < 1e-12
    assert high_frequency_energy(wave(10)) == pytest.approx(1.0, abs=1e-12)
    assert high_frequency_energy(wave(10), cutoff=0.4) < 1e-12
