"""Environments for image-based lighting: made here from a formula (nothing shipped as an
image, nothing downloaded) and pre-filtered once per process.

An environment is an equirectangular, linear-light radiance map (+y up; u = 0.5 looks down
-z, glTF's back, so the model's front, +z, faces the map's seam at u = 0/1). For shading it is
reduced to:

- **diffuse**: the irradiance's 9 spherical-harmonic coefficients (order 2, each already
  convolved with the cosine lobe), evaluated per vertex or pixel with a few multiply-adds;
- **specular**: :data:`LEVELS` maps, each half the size of the one before, for roughness
  0, 0.25, 0.5, 0.75 and 1: level k is the map filtered with a Phong lobe of the exponent that
  roughness has in ``lighting.glsl`` (the renderer uploads them as one texture's mip levels and
  samples ``textureLod(env, dir, roughness * 4)``).

Built-ins (:data:`farview.input.scene.ENVIRONMENTS`): ``studio``, a soft grey room with a
large light box above front-right (where the key light comes from) and a dimmer one left;
``outdoor``, a blue sky with a sun and brown ground.

Pure numpy; :func:`environment` caches by name (about 0.1-0.2 s for the first call here).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

LEVELS = 5
"""Specular levels, roughness k / (LEVELS - 1) for level k."""
BASE_SIZE = (128, 64)
"""Width × height of level 0 (the mirror-sharp map)."""


@dataclass(frozen=True)
class Environment:
    name: str
    sh: npt.NDArray[np.float32]
    """(9, 3) irradiance coefficients (cosine-convolved), for :func:`irradiance`'s basis."""
    levels: tuple[npt.NDArray[np.float32], ...]
    """Specular maps, (h, w, 3) linear RGB each, level 0 first."""


def directions(width: int, height: int) -> npt.NDArray[np.float64]:
    """(h, w, 3) unit directions of each texel's centre of an equirectangular map."""
    u = (np.arange(width) + 0.5) / width
    v = (np.arange(height) + 0.5) / height
    phi = (u - 0.5) * 2 * math.pi  # 0 at u = 0.5: -z
    theta = v * math.pi  # 0 at the top: +y
    st = np.sin(theta)[:, None]
    x = st * np.sin(phi)[None, :]
    z = -st * np.cos(phi)[None, :]
    y = np.broadcast_to(np.cos(theta)[:, None], x.shape)
    return np.stack([x, y, z], axis=-1)


def _solid_angles(width: int, height: int) -> npt.NDArray[np.float64]:
    theta = (np.arange(height) + 0.5) / height * math.pi
    return np.broadcast_to((np.sin(theta) * (math.pi / height) * (2 * math.pi / width))[:, None],
                           (height, width))


def _lobe(d: npt.NDArray[np.float64], centre: tuple[float, float, float],
          sharpness: float) -> npt.NDArray[np.float64]:
    c = np.asarray(centre, dtype=np.float64)
    c = c / np.linalg.norm(c)
    return np.asarray(np.exp(sharpness * ((d @ c) - 1.0)))


def radiance(name: str, d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Linear RGB radiance of built-in environment ``name`` in directions ``d`` (..., 3)."""
    y = d[..., 1:2]
    if name == "studio":
        wall = np.array([0.32, 0.32, 0.34])
        floor = np.array([0.16, 0.155, 0.15])
        up = np.clip(y * 4 + 0.5, 0.0, 1.0)  # soft horizon
        out = floor + (wall - floor) * up + np.array([0.12, 0.12, 0.13]) * np.clip(y, 0, 1)
        out = out + 5.0 * _lobe(d, (0.4, 0.8, 0.45), 18.0)[..., None] * np.array([1.0, 0.97, 0.92])
        out = out + 1.2 * _lobe(d, (-0.7, 0.3, 0.6), 10.0)[..., None] * np.array([0.9, 0.95, 1.0])
        return np.asarray(out * 0.6)
    if name == "outdoor":
        horizon = np.array([0.8, 0.82, 0.85])
        zenith = np.array([0.35, 0.45, 0.65])
        ground = np.array([0.14, 0.11, 0.08])
        t = np.clip(y, 0.0, 1.0) ** 0.5
        sky = horizon + (zenith - horizon) * t
        g = np.clip(-y * 8, 0.0, 1.0)
        out = sky * (1 - g) + ground * g
        out = out + 40.0 * _lobe(d, (0.4, 0.8, 0.45), 900.0)[..., None] * np.array([1.0, 0.95, 0.85])
        out = out + 0.6 * _lobe(d, (0.4, 0.8, 0.45), 12.0)[..., None] * np.array([1.0, 0.9, 0.7])
        return np.asarray(out * 0.7)
    raise ValueError(f"unknown environment {name!r}")


def _sh_basis(d: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The 9 real spherical harmonics (order 2) at unit directions ``d`` (..., 3)."""
    x, y, z = d[..., 0], d[..., 1], d[..., 2]
    return np.stack([
        0.282095 * np.ones_like(x),
        0.488603 * y, 0.488603 * z, 0.488603 * x,
        1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
        1.092548 * x * z, 0.546274 * (x * x - y * y)], axis=-1)


_COSINE_BANDS = np.array([math.pi] + [2 * math.pi / 3] * 3 + [math.pi / 4] * 5)
"""The cosine lobe's convolution factor per band (Ramamoorthi and Hanrahan)."""


def irradiance(sh: npt.NDArray[np.float32], n: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Irradiance (linear RGB) at normals ``n`` (..., 3) from :attr:`Environment.sh` (as the
    shader evaluates it)."""
    return np.asarray(_sh_basis(n) @ sh.astype(np.float64))


def roughness_exponent(roughness: float) -> float:
    """The Phong exponent ``lighting.glsl`` gives a roughness (its specular lobe)."""
    r = min(max(roughness, 0.04), 1.0)
    return min(max(2.0 / r ** 4 - 2.0, 1.0), 2048.0)


def _filter(src: npt.NDArray[np.float64], src_dirs: npt.NDArray[np.float64],
            weights: npt.NDArray[np.float64], out_w: int, out_h: int,
            exponent: float) -> npt.NDArray[np.float32]:
    """``src`` filtered with a normalised Phong lobe of ``exponent`` around each output
    texel's direction (brute force, in row blocks to bound the temporaries)."""
    flat_src = src.reshape(-1, 3)
    flat_dirs = src_dirs.reshape(-1, 3)
    flat_w = weights.reshape(-1)
    out_dirs = directions(out_w, out_h).reshape(-1, 3)
    out = np.empty((len(out_dirs), 3))
    for start in range(0, len(out_dirs), 512):
        cos = np.clip(out_dirs[start:start + 512] @ flat_dirs.T, 0.0, 1.0)
        k = np.power(cos, exponent) * flat_w
        out[start:start + 512] = (k @ flat_src) / np.maximum(k.sum(axis=1, keepdims=True), 1e-12)
    return out.reshape(out_h, out_w, 3).astype(np.float32)


@functools.lru_cache(maxsize=4)
def environment(name: str) -> Environment:
    """Built-in environment ``name``, pre-filtered (cached per process)."""
    w, h = BASE_SIZE
    dirs = directions(w, h)
    base = radiance(name, dirs)
    weights = _solid_angles(w, h)
    basis = _sh_basis(dirs)
    coeffs = np.einsum("hwk,hwc,hw->kc", basis, base, weights)
    sh = (coeffs * _COSINE_BANDS[:, None]).astype(np.float32)
    # The filters read a half-size copy (texel ~3°), enough for the lobes of roughness >= 0.25
    # (the sharpest, exponent 510, is ~3.6° wide).
    sw, sh_ = w // 2, h // 2
    small_dirs = directions(sw, sh_)
    small = radiance(name, small_dirs)
    small_w = _solid_angles(sw, sh_)
    levels = [base.astype(np.float32)]
    for k in range(1, LEVELS):
        lw, lh = max(w >> k, 4), max(h >> k, 2)
        levels.append(_filter(small, small_dirs, small_w, lw, lh,
                              roughness_exponent(k / (LEVELS - 1))))
    return Environment(name, sh, tuple(levels))
