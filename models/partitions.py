"""Choosing partitions and sizes for Local-Global fields, and where new partitions take their weights from.

``auto_partition`` follows the paper's Appendix A: partition factors from a target partition size, a global
width for the wanted share of global weights, the local width that fills the rest of the parameter budget,
then the global width nudged until the total is within 1% of the budget.

``extension_sources`` picks, for every partition added when a field is extended, the trained partition it is
initialised from: the partition at the mirror image of the new one across the edge of the trained region (as
mirror padding picks it), or the nearest trained partition where the region is irregular.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from .local_global import (LocalGlobalConfig, global_parameters, local_parameters_per_partition,
                           partition_grid_index)

EXTENSION_INITS = ("copy", "reflect", "fresh")
"""How added partitions start: 'copy' (the weights of the trained partition that mirror padding puts there,
unchanged: the paper's method; the copy continues its source's function across the edge), 'reflect' (the same
source with its first layer reflected, so that its local features start as the mirror image of the source's;
the global features are not mirrored, which makes it a worse start: see README) or 'fresh' (SIREN init)."""


def partition_factors_for(shape: tuple[int, ...], partition_size: int) -> tuple[int, ...]:
    """Parts per axis (array order) so that each partition spans about ``partition_size`` samples."""
    if partition_size < 1:
        raise ValueError(f"partition size must be at least 1, got {partition_size}")
    return tuple(max(1, math.ceil(n / partition_size)) for n in shape)


def auto_partition(base: LocalGlobalConfig, total_params: int, global_ratio: float) -> LocalGlobalConfig:
    """``base`` (its partitions, depth, in/out) with local and global widths for a parameter budget.

    ``global_ratio`` is the wanted share of global weights (the paper recommends 0.05-0.15); 0 gives a
    SIREN-per-partition. Raises ValueError when the budget cannot give every partition one unit.
    """
    if not 0.0 <= global_ratio < 1.0:
        raise ValueError(f"global ratio must be in [0, 1), got {global_ratio}")
    parts = base.num_partitions if base.present is None else len(base.present)

    def local_total(h: int) -> int:
        return parts * local_parameters_per_partition(replace(base, local_width=h))

    def global_total(g: int, h: int) -> int:
        return global_parameters(replace(base, global_width=g, local_width=h))

    if local_total(1) > total_params:
        raise ValueError(f"{total_params:,} parameters are too few for {parts} partitions "
                         f"(at least {local_total(1):,} needed)")
    if global_ratio == 0:  # the width whose total is nearest the budget (a fair match for comparisons)
        h = _largest(lambda x: local_total(x) <= total_params)
        h = min((h, h + 1), key=lambda x: abs(local_total(x) - total_params))
        return replace(base, local_width=h, global_width=0)
    guess_h = _largest(lambda x: local_total(x) <= total_params * (1 - global_ratio))
    g = max(1, _largest(lambda x: global_total(x, guess_h) <= total_params * global_ratio))
    h = max(1, _largest(lambda x: local_total(x) + global_total(g, x) <= total_params))
    # The paper nudges the global width until the total is within 1% of the budget; of the local widths
    # next to the first guess, keep the one whose global share then lies closest to the wanted ratio.
    best = None
    for width in (h - 1, h, h + 1):
        if width < 1:
            continue
        gw = _fit_global(width, g, total_params, local_total, global_total)
        total = local_total(width) + global_total(gw, width)
        outside = abs(total - total_params) > 0.01 * total_params
        share_miss = abs(global_total(gw, width) / total - global_ratio)
        score = (outside, abs(total - total_params) if outside else share_miss)
        if best is None or score < best[0]:
            best = (score, width, gw)
    return replace(base, local_width=best[1], global_width=best[2])


def _fit_global(h: int, g: int, total_params: int, local_total, global_total) -> int:
    for _ in range(4096):
        total = local_total(h) + global_total(g, h)
        if abs(total - total_params) <= 0.01 * total_params:
            break
        step = -1 if total > total_params else 1
        if g + step < 1:
            break
        g += step
    return g


def _largest(fits) -> int:
    """Largest x >= 1 with fits(x) (fits is monotone decreasing); 1 when nothing fits."""
    lo, hi = 1, 2
    while fits(hi) and hi < 1 << 20:
        lo, hi = hi, hi * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def partitions_in_box(config: LocalGlobalConfig, lower: tuple[float, ...], upper: tuple[float, ...]) -> list[int]:
    """Flat indices of partitions overlapping a box given as fractions of each array axis (0..1, array order)."""
    ranges = []
    for lo, hi, parts in zip(lower, upper, config.partitions):
        first = min(parts - 1, max(0, math.floor(lo * parts + 1e-9)))
        last = min(parts - 1, max(first, math.ceil(hi * parts - 1e-9) - 1))
        ranges.append(range(first, last + 1))
    flats = []
    for index in _product(ranges):
        flat = 0
        for i, parts in zip(index, config.partitions):
            flat = flat * parts + i
        flats.append(flat)
    return sorted(flats)


def _product(ranges):
    if not ranges:
        yield ()
        return
    for head in ranges[0]:
        for tail in _product(ranges[1:]):
            yield (head, *tail)


def extension_sources(config: LocalGlobalConfig, present: list[int], new: list[int]) -> dict[int, tuple[int, tuple[bool, ...]]]:
    """For each new partition: (trained partition to copy, per array axis whether the copy is reflected)."""
    if not present:
        raise ValueError("cannot extend a field with no trained partition")
    grid = {p: partition_grid_index(config, p) for p in present}
    lows = [min(index[a] for index in grid.values()) for a in range(len(config.partitions))]
    highs = [max(index[a] for index in grid.values()) for a in range(len(config.partitions))]
    sources = {}
    for p in new:
        target = partition_grid_index(config, p)
        mirrored, flips = [], []
        for i, lo, hi in zip(target, lows, highs):
            flipped = False
            while not lo <= i <= hi:  # reflect across the region's edge (repeatedly when far outside)
                i = 2 * hi + 1 - i if i > hi else 2 * lo - 1 - i
                flipped = not flipped
            mirrored.append(i)
            flips.append(flipped)
        nearest = min(present, key=lambda q: (sum((a - b) ** 2 for a, b in zip(grid[q], mirrored)), q))
        sources[p] = (nearest, tuple(flips))
    return sources


def partition_box(config: LocalGlobalConfig, flat: int) -> list[tuple[float, float]]:
    """Coordinate interval of a partition per coordinate axis (x, y, ...)."""
    extent = config.extent or (1.0,) * config.in_features
    index = partition_grid_index(config, flat)
    box = [(0.0, 0.0)] * config.in_features
    for axis, (i, parts) in enumerate(zip(index, config.partitions)):
        coord_axis = config.in_features - 1 - axis
        half = extent[coord_axis]
        size = 2.0 * half / parts
        box[coord_axis] = (-half + i * size, -half + (i + 1) * size)
    return box


def reflect_first_layer(config: LocalGlobalConfig, weight: torch.Tensor, bias: torch.Tensor, source: int, target: int,
                        flips: tuple[bool, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """First-layer weight [in, h] and bias [1, h] that make ``target`` see its coordinates reflected into
    ``source``'s box along the flipped axes: x'_a = (source_hi + target_lo) - x_a."""
    weight, bias = weight.clone(), bias.clone()
    source_box, target_box = partition_box(config, source), partition_box(config, target)
    for axis, flipped in enumerate(flips):
        if not flipped:
            continue
        coord_axis = config.in_features - 1 - axis
        shift = source_box[coord_axis][1] + target_box[coord_axis][0]
        bias += shift * weight[coord_axis:coord_axis + 1]
        weight[coord_axis] = -weight[coord_axis]
    return weight, bias
