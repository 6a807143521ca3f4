"""The frame marker survives a real H.264 encode/decode round trip (libx264 via PyAV)."""

from __future__ import annotations

import numpy as np
import pytest

from farview.input import marker
from farview.streaming.encoder import EncoderSettings, H264Encoder
from farview.streaming.planes import plane_array


def test_burn_and_read_raw() -> None:
    y = np.full((240, 320), 100, np.uint8)
    u = np.full((120, 160), 90, np.uint8)
    v = u.copy()
    marker.burn(y, u, v, 0xDEADBEEF)
    assert marker.read(y) == 0xDEADBEEF
    assert marker.read(np.full((240, 320), 120, np.uint8)) is None


def _round_trip(frames: list[tuple[np.ndarray, np.ndarray, np.ndarray, int]], w: int, h: int,
                bitrate: int) -> list[tuple[int | None, int]]:
    import av

    enc = H264Encoder(EncoderSettings(width=w, height=h, bitrate=bitrate, prefer_hardware=False))
    dec = av.CodecContext.create("h264", "r")
    out = []
    for i, (y, u, v, value) in enumerate(frames):
        marker.burn(y, u, v, value)
        pictures = []
        for p in enc.encode(y, u, v, i * 1500, keyframe=i == 0):
            pictures += dec.decode(p)
        assert len(pictures) == 1
        out.append((marker.read(plane_array(pictures[0].planes[0], w, h)), value))
    return out


VALUES = [7, 123456, 0xFFFFFFFF, 0, 99, 0xFFFFFFFF, 0x80000001]


@pytest.mark.parametrize("size", [(320, 240), (1280, 720)])
def test_marker_survives_h264_on_moving_content(size: tuple[int, int]) -> None:
    """Rendered-like frames (a textured gradient that moves every frame) at the product's
    default 8 Mbit/s: every marker reads back exactly, through all-ones ↔ all-zeros swings."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i, value in enumerate(VALUES):
        y = ((xx * 0.3 + yy * 0.2 + 9 * i) % 200 + 20 + 15 * np.sin(xx / 7.0 + i)).astype(np.uint8)
        u = np.full((h // 2, w // 2), 110 + 3 * i, np.uint8)
        frames.append((y, u, u.copy(), value))
    assert _round_trip(frames, w, h, 8_000_000) == [(v, v) for v in VALUES]


@pytest.mark.parametrize("size", [(320, 240), (1280, 720)])
def test_marker_on_noise_at_a_starved_bitrate_is_exact_unreadable_or_stale(size: tuple[int, int]) -> None:
    """Noise at 2 Mbit/s, the hardest case: the VBV-capped encoder falls back to its coarsest
    quantiser, and x264's sliced-thread rate control is not bit-exact between runs, so a marker
    block may be left half-way (once in CI: Y ≈ 100), or the marker's macroblocks skipped, so
    the previous frame's marker stays (once in CI: frame 2 read 7, frame 1's value). A read
    must be the frame's value, unreadable (``None``) or an earlier frame's value, never one no
    frame carried; at least half the frames still read exactly (usually 6 or 7 of 7; 4 of 7
    was seen once in seven runs at 1280×720)."""
    w, h = size
    rng = np.random.default_rng(1)
    frames = [(rng.integers(0, 256, (h, w), dtype=np.uint8),
               rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8),
               rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8), value) for value in VALUES]
    results = _round_trip(frames, w, h, 2_000_000)
    for i, (got, want) in enumerate(results):
        assert got is None or got == want or got in VALUES[:i], results
    assert sum(got == want for got, want in results) >= len(VALUES) // 2, results
