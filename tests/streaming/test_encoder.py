"""farview's H.264 encoder and the plane views it is fed through (real PyAV, real libx264)."""

from __future__ import annotations

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
