"""The machine's float32 matmul peak (as measured, with the configured threads) and a step's FLOP count."""
from __future__ import annotations

import time

import torch
from torch import nn

from .loops import synchronize


def matmul_rate(m: int, k: int, n: int, device: torch.device, seconds: float, trials: int = 3) -> float:
    """Best FLOP/s over ``trials`` of repeated float32 ``(m x k) @ (k x n)`` products, each ~``seconds`` long."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(m, k, generator=generator).to(device)
    b = torch.randn(k, n, generator=generator).to(device)
    out = torch.empty(m, n, device=device)
    flops_per_product = 2.0 * m * k * n
    torch.matmul(a, b, out=out)
    synchronize(device)
    started = time.perf_counter()
    torch.matmul(a, b, out=out)
    synchronize(device)
    single = max(time.perf_counter() - started, 1e-6)
    repeats = max(1, int(seconds / single))
    best = 0.0
    for _ in range(trials):
        started = time.perf_counter()
        for _ in range(repeats):
            torch.matmul(a, b, out=out)
        synchronize(device)
        best = max(best, flops_per_product * repeats / (time.perf_counter() - started))
    return best


def matmul_peak(device: torch.device, seconds: float) -> dict:
    """Peak float32 matmul rate: the best of a few big square sizes (GPUs need bigger ones than CPUs)."""
    sizes = (1024, 2048) if device.type == "cpu" else (4096, 8192)
    rates = {size: matmul_rate(size, size, size, device, seconds) for size in sizes}
    best = max(rates, key=rates.get)
    return {"flops": rates[best], "size": best, "by_size": {str(size): rate for size, rate in rates.items()},
            "dtype": "float32", "tf32": device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32}


def linear_layers(model: nn.Module) -> list[nn.Linear]:
    return [module for module in model.modules() if isinstance(module, nn.Linear)]


def step_flops(model: nn.Module, batch: int) -> float:
    """Matmul FLOPs of one training step: forward 2*N*in*out per linear layer, backward counted as 2x forward.

    Sines, the loss, biases and Adam are ignored. The backward figure slightly overcounts the first layer,
    whose input (the coordinates) needs no gradient.
    """
    forward = sum(2.0 * batch * layer.in_features * layer.out_features for layer in linear_layers(model))
    return 3.0 * forward


def hidden_layer_rate(model: nn.Module, batch: int, device: torch.device, seconds: float) -> float:
    """Matmul FLOP/s at the hidden layers' shape (batch x width @ width x width): what this shape can reach."""
    widest = max(linear_layers(model), key=lambda layer: layer.in_features * layer.out_features)
    return matmul_rate(batch, widest.in_features, widest.out_features, device, seconds)
