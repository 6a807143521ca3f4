"""The frame marker survives a real H.264 encode/decode round trip (libx264 via PyAV)."""

from __future__ import annotations

import numpy as np
import pytest

from input import marker
from streaming.encoder import EncoderSettings, H264Encoder
from streaming.receiver import plane_array


def test_burn_and_read_raw() -> None:
    y = np.full((240, 320), 100, np.uint8)
    u = np.full((120, 160), 90, np.uint8)
    v = u.copy()
    marker.burn(y, u, v, 0xDEADBEEF)
    assert marker.read(y) == 0xDEADBEEF
    assert marker.read(np.full((240, 320), 120, np.uint8)) is None


@pytest.mark.parametrize("size", [(320, 240), (1280, 720)])
def test_marker_survives_h264(size: tuple[int, int]) -> None:
    import av

    w, h = size
    rng = np.random.default_rng(1)
    enc = H264Encoder(EncoderSettings(width=w, height=h, bitrate=2_000_000, prefer_hardware=False))
    dec = av.CodecContext.create("h264", "r")
    values = [7, 123456, 0xFFFFFFFF, 0, 99]
    for i, value in enumerate(values):
        y = rng.integers(0, 256, (h, w), dtype=np.uint8)  # noise: the hardest case for the encoder
        u = rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8)
        v = rng.integers(0, 256, (h // 2, w // 2), dtype=np.uint8)
        marker.burn(y, u, v, value)
        pictures = []
        for p in enc.encode(y, u, v, i * 1500, keyframe=i == 0):
            pictures += dec.decode(p)
        assert len(pictures) == 1
        assert marker.read(plane_array(pictures[0].planes[0], w, h)) == value
