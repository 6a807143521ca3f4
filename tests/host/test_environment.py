"""The environments' pre-filtering (pure numpy): spherical-harmonic irradiance against a
brute-force integral, the specular levels against their definition."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from farview.host import environment as env_mod
from farview.host.environment import BASE_SIZE, LEVELS, directions, environment, irradiance


def brute_irradiance(name: str, n: np.ndarray, size: tuple[int, int] = (256, 128)) -> np.ndarray:
    w, h = size
    d = directions(w, h)
    theta = (np.arange(h) + 0.5) / h * np.pi
    weights = np.sin(theta)[:, None] * (np.pi / h) * (2 * np.pi / w)
    cos = np.clip(d @ n, 0.0, None)
    return np.einsum("hw,hwc->c", cos * weights, env_mod.radiance(name, d))


@pytest.mark.parametrize("name", ["studio", "outdoor"])
def test_sh_irradiance_matches_the_integral(name: str) -> None:
    e = environment(name)
    assert e.sh.shape == (9, 3)
    for n in ([0, 1, 0], [0, -1, 0], [0, 0, 1], [1, 0, 0], [0.4, 0.8, 0.45]):
        n = np.asarray(n, dtype=np.float64) / np.linalg.norm(n)
        want, got = brute_irradiance(name, n), irradiance(e.sh, n)
        # order-2 harmonics carry a cosine-convolved map to within a few per cent
        np.testing.assert_allclose(got, want, rtol=0.12, atol=0.02)


def test_a_uniform_environment_gives_pi_times_its_radiance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env_mod, "radiance",
                        lambda name, d: np.broadcast_to([0.5, 1.0, 2.0], d.shape))
    env_mod.environment.cache_clear()
    try:
        e = environment("uniform")
        for n in ([0, 1, 0], [1, 0, 0], [0, 0, -1]):
            np.testing.assert_allclose(irradiance(e.sh, np.asarray(n, float)),
                                       np.pi * np.array([0.5, 1.0, 2.0]), rtol=2e-3)
        for level in e.levels:  # filtering a constant leaves it constant
            np.testing.assert_allclose(level, np.broadcast_to([0.5, 1.0, 2.0], level.shape),
                                       rtol=1e-4)
    finally:
        env_mod.environment.cache_clear()


def test_levels_halve_and_blur() -> None:
    e = environment("studio")
    assert len(e.levels) == LEVELS
    w, h = BASE_SIZE
    for k, level in enumerate(e.levels):
        assert level.shape == (max(h >> k, 2), max(w >> k, 4), 3)
    # rougher levels spread the light box: the peak falls, the mean stays
    peaks = [float(level.max()) for level in e.levels]
    assert all(a > b for a, b in itertools.pairwise(peaks)), peaks
    means = [float(level.mean()) for level in e.levels]
    assert max(means) / min(means) < 1.15, means


def test_unknown_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown environment 'disco'"):
        environment("disco")
