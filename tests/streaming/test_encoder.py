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


def test_a_keyframe_at_a_low_bit_rate_is_a_picture() -> None:
    """At 0.2 Mbit/s and 15 frames a second of 960×540, two frames' budget is 3.3 KB: x264
    held the keyframe to that and sent a grey picture (its marker unreadable, Y PSNR 11 dB on
    the sample model). A keyframe gets KEYFRAME_MIN_BITS_PER_PIXEL (a fresh encoder with a
    bigger buffer), the frames after it go back to their budget, and every frame decodes as its
    own picture, the keyframe forced mid-stream too."""
    from farview.input import marker
    from farview.streaming.encoder import KEYFRAME_MIN_BITS_PER_PIXEL

    w, h = 960, 540
    enc = H264Encoder(EncoderSettings(width=w, height=h, bitrate=200_000, prefer_hardware=False))
    enc.set_bitrate(200_000, 15)
    dec = av.CodecContext.create("h264", "r")
    yy, xx = np.mgrid[0:h, 0:w]
    shown, psnr, sizes = [], [], []
    for i in range(30):
        a = i * 0.02
        y = (128 + 60 * np.sin(xx / 40 + a) * np.cos(yy / 30 - a)).astype(np.uint8)
        uv = np.full((h // 2, w // 2), 128, np.uint8)
        marker.burn(y, uv, uv.copy(), i)
        key = i in (0, 20)
        packets = enc.encode(y, uv, np.full_like(uv, 128), pts=i * 6000, keyframe=key)
        sizes.append(sum(p.size for p in packets))
        for packet in packets:
            for picture in dec.decode(av.Packet(bytes(packet))):
                got = picture.to_ndarray()[:h].astype(np.float64)
                shown.append(marker.read(picture.to_ndarray()[:h]))
                if key:
                    mse = float(((got - y) ** 2).mean())
                    psnr.append(10 * np.log10(255 ** 2 / max(mse, 1e-9)))
    assert shown == list(range(30))
    assert len(psnr) == 2 and min(psnr) > 25, psnr
    assert enc.reopened_for_keyframes == 2
    assert min(sizes[0], sizes[20]) * 8 > 0.5 * KEYFRAME_MIN_BITS_PER_PIXEL * w * h
    budget = 200_000 / 15 / 8  # bytes a frame
    later = sizes[25:30]
    assert max(later) < 3 * budget, sizes  # back to the frame budget after the keyframe
