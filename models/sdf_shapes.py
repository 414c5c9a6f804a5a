"""Analytic 3D shapes as signed-distance functions in the cube [-1, 1]^3.

Convention: the signed distance is NEGATIVE INSIDE and positive outside; every shape lies inside
[-0.85, 0.85]^3. Points are (N, 3) arrays; distances come back as float32 (N,). Float32 input is
evaluated in float32 (fast volume grids), anything else in float64 (finite differences, projections).

Three shapes have exact formulas (Inigo Quilez's primitives). Three detailed ones, which show a network's
spectral growth, are only approximations of a distance (a bound, or exact along some directions); the
training targets for those are the distances to a fine ground-truth mesh (see ``models.sdf_signal``).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

BOUND = 0.85
"""Every shape lies inside [-BOUND, BOUND]^3."""


def _points(points) -> np.ndarray:
    p = np.asarray(points)
    if p.dtype != np.float32:
        p = p.astype(np.float64)
    if p.ndim != 2 or p.shape[1] != 3:
        raise ValueError(f"expected points of shape (N, 3), got {p.shape}")
    return p


def _length(p: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", p, p))


@dataclass(frozen=True, eq=False)
class AnalyticShape:
    """A shape given by a function of the points; ``sdf`` wraps it to a float32 (N,) result."""

    name: str
    label: str
    """Short description for the user, with the sizes."""
    exact: bool
    """True when ``fn`` is the exact Euclidean signed distance everywhere."""
    note: str
    """What kind of approximation ``fn`` is, when it is not exact."""
    fn: Callable[[np.ndarray], np.ndarray]
    grid_fn: Callable[[int], np.ndarray] | None = None
    """Optional fast evaluation on a res^3 grid (values may be clamped far from the surface)."""

    def sdf(self, points) -> np.ndarray:
        p = _points(points)
        if len(p) == 0:
            return np.zeros(0, dtype=np.float32)
        return np.asarray(self.fn(p), dtype=np.float32).reshape(len(p))

    def grid(self, res: int) -> np.ndarray:
        """Values at the (res, res, res) grid ``linspace(-1, 1, res)`` per axis, indexed [x, y, z], float32.

        Only the sign and the values near zero are guaranteed (what marching cubes needs)."""
        if self.grid_fn is not None:
            return self.grid_fn(res)
        axis = np.linspace(-1.0, 1.0, res, dtype=np.float32)
        out = np.empty((res, res, res), dtype=np.float32)
        gy, gz = np.meshgrid(axis, axis, indexing="ij")
        yz = np.stack([gy.ravel(), gz.ravel()], axis=1)
        step = max(1, 2_000_000 // (res * res))
        for start in range(0, res, step):
            xs = axis[start:start + step]
            pts = np.empty((len(xs) * res * res, 3), dtype=np.float32)
            pts[:, 0] = np.repeat(xs, res * res)
            pts[:, 1:] = np.tile(yz, (len(xs), 1))
            out[start:start + len(xs)] = self.sdf(pts).reshape(len(xs), res, res)
        return out


# --- exact primitives (https://iquilezles.org/articles/distfunctions/) ---------------------------------

SPHERE_RADIUS = 0.6
TORUS_RADII = (0.5, 0.2)
BOX_HALF = (0.55, 0.4, 0.3)
BOX_ROUNDING = 0.05


def _sphere(p: np.ndarray) -> np.ndarray:
    return _length(p) - SPHERE_RADIUS


def _torus(p: np.ndarray) -> np.ndarray:
    """Ring in the xy-plane around the z axis (lying flat for a z-up camera)."""
    big, small = TORUS_RADII
    qx = np.sqrt(p[:, 0] ** 2 + p[:, 1] ** 2) - big
    return np.sqrt(qx ** 2 + p[:, 2] ** 2) - small


def _rounded_box(p: np.ndarray, half=BOX_HALF, rounding: float = BOX_ROUNDING) -> np.ndarray:
    """Exact: outer half-sizes ``half``, edges rounded with radius ``rounding``."""
    q = np.abs(p) - (np.asarray(half, dtype=p.dtype) - rounding)
    outside = _length(np.maximum(q, 0.0))
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + inside - rounding


def _rounded_box_grid(res: int) -> np.ndarray:
    """Separable form of ``_rounded_box`` on the grid (broadcast per axis)."""
    axis = np.linspace(-1.0, 1.0, res, dtype=np.float32)
    qx, qy, qz = (np.abs(axis) - np.float32(h - BOX_ROUNDING) for h in BOX_HALF)
    qx, qy, qz = qx[:, None, None], qy[None, :, None], qz[None, None, :]
    outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2 + np.maximum(qz, 0) ** 2)
    inside = np.minimum(np.maximum(np.maximum(qx, qy), qz), 0)
    return (outside + inside - np.float32(BOX_ROUNDING)).astype(np.float32)


# --- detailed, approximate shapes --------------------------------------------------------------------

GYROID_K = 3.0 * np.pi          # 3 periods across the cube's side of 2
GYROID_THICKNESS = 0.08
GYROID_SPHERE = 0.75
GYROID_GRADIENT = 1.5           # |grad g| / k on the surface g = 0 lies in [1.41, 1.73]


def _gyroid(p: np.ndarray) -> np.ndarray:
    x, y, z = (GYROID_K * p).T
    g = np.sin(x) * np.cos(y) + np.sin(y) * np.cos(z) + np.sin(z) * np.cos(x)
    sheet = np.abs(g) / (GYROID_K * GYROID_GRADIENT) - 0.5 * GYROID_THICKNESS
    return np.maximum(sheet, _length(p) - GYROID_SPHERE)


def _gyroid_grid(res: int) -> np.ndarray:
    """Separable: sin/cos per axis, broadcast (much faster than point by point)."""
    axis = np.linspace(-1.0, 1.0, res, dtype=np.float32)
    s, c = np.sin(GYROID_K * axis), np.cos(GYROID_K * axis)
    g = (s[:, None, None] * c[None, :, None] + s[None, :, None] * c[None, None, :]
         + s[None, None, :] * c[:, None, None])
    sheet = np.abs(g) * np.float32(1.0 / (GYROID_K * GYROID_GRADIENT)) - np.float32(0.5 * GYROID_THICKNESS)
    sq = axis * axis
    radius = np.sqrt(sq[:, None, None] + sq[None, :, None] + sq[None, None, :])
    return np.maximum(sheet, radius - np.float32(GYROID_SPHERE)).astype(np.float32)


BUMPY_RADIUS = 0.6
# (amplitude, frequency, phases): products of sines of the unit direction, a few octaves; |bumps| <= 0.06
BUMPY_TERMS = (
    (0.025, 3.0, (0.3, 1.1, 2.0)),
    (0.018, 7.0, (1.7, 0.4, 2.9)),
    (0.011, 13.0, (0.9, 2.3, 0.2)),
    (0.006, 23.0, (2.6, 1.4, 0.7)),
)


def _bumpy_sphere(p: np.ndarray) -> np.ndarray:
    r = _length(p)
    u = p / np.maximum(r, 1e-9)[:, None]
    bumps = np.zeros_like(r)
    for amplitude, frequency, phases in BUMPY_TERMS:
        term = np.full_like(r, amplitude)
        for axis in range(3):
            term *= np.sin(frequency * u[:, axis] + phases[axis])
        bumps += term
    return r - (BUMPY_RADIUS + bumps)


@dataclass(frozen=True)
class _Blob:
    centre: np.ndarray
    rotation: np.ndarray      # world -> local
    half: np.ndarray | None   # rounded box half sizes, or None for a sphere
    radius: float             # sphere radius, or the box's bounding radius (every point within it of the centre)
    inner: float              # the distance is at most |p - centre| - inner (1-Lipschitz, d(centre) = -inner)


BLOB_COUNT = 40
BLOB_ROUNDING = 0.02


def _make_blobs(count: int = BLOB_COUNT, seed: int = 7) -> tuple[_Blob, ...]:
    rng = np.random.default_rng(seed)
    blobs: list[_Blob] = []
    while len(blobs) < count:
        centre = rng.uniform(-0.6, 0.6, 3)
        if np.linalg.norm(centre) > 0.6:
            continue
        size = rng.uniform(0.08, 0.2)
        if rng.random() < 0.5:
            half, reach, inner = None, size, size
        else:
            half = size * rng.uniform(0.5, 1.0, 3)
            reach, inner = float(np.linalg.norm(half)), float(half.min())
        if np.abs(centre).max() + reach > BOUND:
            continue
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        blobs.append(_Blob(centre, q.T, half, reach, inner))
    return tuple(blobs)


BLOBS = _make_blobs()
_BLOB_CENTRES = np.array([b.centre for b in BLOBS])
_BLOB_REACH = np.array([b.radius for b in BLOBS])
_BLOB_INNER = np.array([b.inner for b in BLOBS])


def _blob_sdf(blob: _Blob, p: np.ndarray) -> np.ndarray:
    local = (p - blob.centre.astype(p.dtype)) @ blob.rotation.T.astype(p.dtype)
    if blob.half is None:
        return _length(local) - np.asarray(blob.radius, dtype=p.dtype)
    return _rounded_box(local, blob.half, BLOB_ROUNDING)


def _blobs(p: np.ndarray) -> np.ndarray:
    """min over the blobs, each evaluated only where it can be the minimum: its lower bound
    |p - c| - reach must not exceed the best upper bound |p - c| - inner of any blob."""
    from scipy.spatial.distance import cdist

    centre_distance = cdist(p, _BLOB_CENTRES)  # (N, blobs)
    upper = (centre_distance - _BLOB_INNER).min(axis=1)
    candidate = np.ascontiguousarray((centre_distance - _BLOB_REACH <= upper[:, None]).T)  # (blobs, N)
    out = np.full(len(p), np.inf, dtype=p.dtype)
    for i, blob in enumerate(BLOBS):
        rows = np.flatnonzero(candidate[i])
        if len(rows):
            out[rows] = np.minimum(out[rows], _blob_sdf(blob, p[rows]))
    return out


BLOB_GRID_MARGIN = 0.1


def _blobs_grid(res: int) -> np.ndarray:
    """Each blob only on its own box (plus a margin); elsewhere the value is clamped to the margin."""
    axis = np.linspace(-1.0, 1.0, res, dtype=np.float32)
    out = np.full((res, res, res), BLOB_GRID_MARGIN, dtype=np.float32)
    step = 2.0 / (res - 1)
    for blob in BLOBS:
        lo = np.clip(np.floor((blob.centre - blob.radius - BLOB_GRID_MARGIN + 1.0) / step).astype(int), 0, res)
        hi = np.clip(np.ceil((blob.centre + blob.radius + BLOB_GRID_MARGIN + 1.0) / step).astype(int) + 1, 0, res)
        gx, gy, gz = np.meshgrid(axis[lo[0]:hi[0]], axis[lo[1]:hi[1]], axis[lo[2]:hi[2]], indexing="ij")
        pts = np.stack([gx.ravel(), gy.ravel(), gz.ravel()], axis=1)
        block = out[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
        np.minimum(block, _blob_sdf(blob, pts).reshape(block.shape), out=block)
    return out


ANALYTIC_SHAPES: dict[str, AnalyticShape] = {
    shape.name: shape for shape in (
        AnalyticShape("sphere", f"sphere (radius {SPHERE_RADIUS})", True, "", _sphere),
        AnalyticShape("torus", f"torus (radii {TORUS_RADII[0]} and {TORUS_RADII[1]}, around the z axis)", True, "",
                      _torus),
        AnalyticShape("box", "rounded box (half sizes 0.55 x 0.4 x 0.3, edge radius 0.05)", True, "", _rounded_box,
                      _rounded_box_grid),
        AnalyticShape(
            "gyroid", f"gyroid sheet (thickness ~{GYROID_THICKNESS}, 3 periods) inside a sphere of radius "
                      f"{GYROID_SPHERE}", False,
            "approximate: |g| / (1.5 k) is not a distance (|grad g| / k varies from 1.41 to 1.73 on the sheet), "
            "and the intersection with the sphere (max) is a bound inside",
            _gyroid, _gyroid_grid),
        AnalyticShape(
            "bumpy-sphere", f"sphere of radius {BUMPY_RADIUS} with radial bumps of 4 octaves (amplitude <= 0.06)",
            False, "approximate: |p| - r(direction) is exact only along rays from the centre", _bumpy_sphere),
        AnalyticShape(
            "blobs", f"union of {BLOB_COUNT} seeded spheres and rounded boxes (sizes 0.08-0.2)", False,
            "exact outside, a bound inside: the union (min) of exact distances underestimates |d| inside overlaps",
            _blobs, _blobs_grid),
    )
}
"""The analytic shapes by name, in display order."""
