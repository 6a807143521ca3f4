"""farview's H.264 encoder and the plane views it is fed through (real PyAV, real libx264)."""

from __future__ import annotations

import itertools

import av
import numpy as np
import pytest

from farview.streaming.encoder import EncoderSettings, H264Encoder
from farview.streaming.planes import plane_array, yuv420_planes

W, H = 322, 180  # 161-pixel chroma rows: PyAV pads the lines, the views must not show it


def test_yuv420_planes_are_writable_views_without_padding() -> None:
    frame = av.VideoFrame(W, H, "yuv420p")
    y, u, v = yuv420_planes(frame)
    assert y.shape == (H, W) and u.shape == v.shape == (H // 2, W // 2)
    assert frame.planes[1].line_size > W // 2  # padded: the views cut it off
    u[:] = 90
    assert bytes(frame.planes[1])[: W // 2] == bytes([90]) * (W // 2)
    with pytest.raises(ValueError, match="expected a yuv420p frame, got nv12"):
        yuv420_planes(av.VideoFrame(W, H, "nv12"))


def test_plane_array_interleaved_channels() -> None:
    frame = av.VideoFrame(W, H, "nv24")
    uv = plane_array(frame.planes[1], W, H, 2)
    assert uv.shape == (H, W, 2)
    uv[:, :, 0] = 3
    uv[:, :, 1] = 7
    row = np.frombuffer(frame.planes[1], np.uint8)[: 2 * W]
    assert (row[0::2] == 3).all() and (row[1::2] == 7).all()


def test_encode_frame_takes_the_frame_as_is_and_refuses_others() -> None:
    enc = H264Encoder(EncoderSettings(width=W, height=H, prefer_hardware=False))
    frame = av.VideoFrame(W, H, "yuv420p")
    y, u, v = yuv420_planes(frame)
    y[:] = 120
    u[:] = v[:] = 128
    packets = enc.encode_frame(frame, pts=0, keyframe=True)
    assert len(packets) == 1 and packets[0].is_keyframe and frame.pts == 0
    decoded = av.CodecContext.create("h264", "r").decode(packets[0])
    assert abs(float(plane_array(decoded[0].planes[0], W, H).mean()) - 120) < 2
    with pytest.raises(ValueError, match="takes yuv420p 322x180 frames, got nv12 322x180"):
        enc.encode_frame(av.VideoFrame(W, H, "nv12"), pts=1)
    with pytest.raises(ValueError, match="got yuv420p 320x180"):
        enc.encode_frame(av.VideoFrame(320, H, "yuv420p"), pts=1)
    enc.close()


def _nal_types(annexb: bytes) -> list[int]:
    out, i = [], annexb.find(b"\x00\x00\x01")
    while i != -1 and i + 3 < len(annexb):
        out.append(annexb[i + 3] & 0x1F)
        i = annexb.find(b"\x00\x00\x01", i + 3)
    return out


def test_intra_refresh_heals_a_decoder_that_joins_late_without_an_idr() -> None:
    from farview.streaming.assembler import starts_keyframe

    settings = EncoderSettings(width=320, height=240, bitrate=1_000_000, max_fps=60, prefer_hardware=False,
                               intra_refresh=True)
    assert settings.refresh_frames() == 30
    enc = H264Encoder(settings)
    small = np.random.default_rng(3).integers(0, 255, (30, 40)).astype(np.uint8)
    uv = np.full((120, 160), 128, np.uint8)
    packets = []
    for i in range(100):
        y = np.ascontiguousarray(np.roll(np.kron(small, np.ones((8, 8), np.uint8)), i * 2, axis=1))
        packets += [(i, bytes(p)) for p in enc.encode(y, uv, uv, i * 1500, keyframe=i == 0)]
    sweeps = [i for i, data in packets if starts_keyframe(data) and 5 not in _nal_types(data)]
    assert sweeps and sweeps[0] == 30 and all(b - a == 30 for a, b in itertools.pairwise(sweeps))
    # a decoder that lost everything before a sweep's first frame (the client's resync point)
    # starts there: no IDR needed, and it shows pictures once the sweep has healed them
    decoder = av.CodecContext.create("h264", "r")
    shown = []
    for i, data in packets:
        if i < sweeps[0]:
            continue
        packet = av.Packet(data)
        packet.pts = i * 1500
        shown += [int(f.pts) // 1500 for f in decoder.decode(packet)]
    assert shown and sweeps[0] < shown[0] <= sweeps[0] + 2 * settings.refresh_frames()
    assert shown == list(range(shown[0], 100))
