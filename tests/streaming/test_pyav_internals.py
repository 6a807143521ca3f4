"""The PyAV/FFmpeg internal behind congestion control (streaming/_pyav_internals.py): changing a
running encoder's rate control. Fails if PyAV's object layout or FFmpeg's re-reading changes."""

from __future__ import annotations

import itertools

import av
import numpy as np

from farview.streaming import _pyav_internals as internals
from farview.streaming.encoder import EncoderSettings, H264Encoder


def _content(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    small = np.random.default_rng(7).integers(0, 255, (45, 80)).astype(np.uint8)
    y = np.ascontiguousarray(np.roll(np.kron(small, np.ones((8, 8), np.uint8)), i * 5, axis=1))
    uv = np.full((180, 320), 128, np.uint8)
    return y, uv, uv


def _encode(enc: H264Encoder, start: int, n: int) -> list[int]:
    sizes = []
    for i in range(start, start + n):
        packets = enc.encode(*_content(i), pts=i * 1500, keyframe=(i - start) % 30 == 0)
        sizes.append(sum(p.size for p in packets))
    return sizes


def test_pinned_version() -> None:
    assert av.__version__ == internals.PINNED_AV


def test_the_context_pointer_is_found_and_checked() -> None:
    enc = H264Encoder(EncoderSettings(width=640, height=360, bitrate=4_000_000, prefer_hardware=False))
    assert enc._ptr is not None
    assert internals.read_rate_control(enc._ptr) == (4_000_000, 4_000_000, 2 * 4_000_000 // 60)
    # a codec whose checks fail (another object) gives None, never a wrong pointer
    assert internals.context_pointer(object()) is None


def test_vbv_survives_the_first_frame_and_follows_set_bitrate() -> None:
    enc = H264Encoder(EncoderSettings(width=640, height=360, bitrate=4_000_000, prefer_hardware=False))
    high = _encode(enc, 0, 60)
    assert enc._ptr is not None
    # FFmpeg re-reads maxrate/bufsize before every frame: set through its options they stay
    assert internals.read_rate_control(enc._ptr) == (4_000_000, 4_000_000, 133_333)
    enc.set_bitrate(500_000)
    assert internals.read_rate_control(enc._ptr) == (500_000, 500_000, 16_666)
    low = _encode(enc, 60, 60)
    assert enc.bitrate == 500_000
    assert sum(low) < sum(high) / 2
    # the VBV buffer caps every frame, keyframes included (two frames' budget, with x264's slack)
    assert max(low) * 8 <= 16_666 * 1.5


def test_a_lower_frame_rate_gives_each_frame_more_bits() -> None:
    """x264 budgets a frame at the frame rate it was opened with; set_bitrate(rate, fps) scales
    what it is told so that frames coming fps a second add up to the rate."""
    full = H264Encoder(EncoderSettings(width=640, height=360, bitrate=500_000, prefer_hardware=False))
    full.set_bitrate(500_000)
    slow = H264Encoder(EncoderSettings(width=640, height=360, bitrate=500_000, prefer_hardware=False))
    slow.set_bitrate(500_000, 20)
    assert slow._ptr is not None and slow.bitrate == 500_000 and slow.fps == 20
    # three times the buffer: twice at once, the rest after the next frame (MAX_VBV_GROWTH)
    assert internals.read_rate_control(slow._ptr) == (999_960, 999_960, 33_332)
    slow.encode(*_content(0), pts=0, keyframe=True)
    assert internals.read_rate_control(slow._ptr) == (1_500_000, 1_500_000, 50_000)
    sixty = _encode(full, 0, 60)[5:]
    twenty = [sum(p.size for p in slow.encode(*_content(i * 3), pts=i * 4500, keyframe=i == 0))
              for i in range(20)][5:]
    rate_60 = sum(sixty) * 8 / (len(sixty) / 60)
    rate_20 = sum(twenty) * 8 / (len(twenty) / 20)
    print(f"\n500 kbit/s asked: {rate_60 / 1000:.0f} kbit/s sent at 60 fps, {rate_20 / 1000:.0f} at 20 fps")
    assert sum(twenty) / len(twenty) > 2 * sum(sixty) / len(sixty)  # each frame got more bits
    assert rate_20 > 0.5 * rate_60  # and the stream about its rate, not a third of it


def test_a_big_rise_in_rate_does_not_make_a_frame_of_skips() -> None:
    """x264 keeps its VBV buffer's fill in bits when the buffer grows: a buffer 16-64 times
    bigger read as nearly empty and the next frame came out all skipped, showing the frame
    before it again (4-6 frames in 1,500 with random changes, each right after a rise from
    0.5-0.8 Mbit/s at 60 fps to 8 Mbit/s at 15-30). The encoder grows the buffer at most
    MAX_VBV_GROWTH a frame: every frame's marker decodes as its own."""
    from farview.input import marker
    from farview.streaming.encoder import MAX_VBV_GROWTH

    w, h = 640, 360
    enc = H264Encoder(EncoderSettings(width=w, height=h, bitrate=8_000_000, prefer_hardware=False))
    dec = av.CodecContext.create("h264", "r")
    yy, xx = np.mgrid[0:h, 0:w]
    shown = []
    buffers = []
    for i in range(240):
        if i % 12 == 0:  # down, then a big rise 6 frames later
            enc.set_bitrate(500_000, 60)
        elif i % 12 == 6:
            enc.set_bitrate(8_000_000, 15)
        if enc._ptr is not None:
            buffers.append(internals.read_rate_control(enc._ptr)[2] or 0)
        a = i * 0.05
        y = (128 + 60 * np.sin(xx / 40 + a) * np.cos(yy / 30 - a)).astype(np.uint8)
        cx, cy = int(w / 2 + 150 * np.sin(a)), int(h / 2 + 80 * np.cos(a))
        y[max(0, cy - 40):cy + 40, max(0, cx - 40):cx + 40] = 230
        uv = np.full((h // 2, w // 2), 128, np.uint8)
        marker.burn(y, uv, uv.copy(), i)
        for packet in enc.encode(y, uv, np.full_like(uv, 128), pts=i * 1500, keyframe=i == 0):
            shown += [marker.read(p.to_ndarray()[:h]) for p in dec.decode(av.Packet(bytes(packet)))]
    assert shown == list(range(240))
    rises = [b / a for a, b in itertools.pairwise(buffers) if b > a]
    assert rises and max(rises) <= MAX_VBV_GROWTH + 1e-3
