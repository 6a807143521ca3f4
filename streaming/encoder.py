"""farview's own H.264 encoder: I420 planes in, ``av.Packet``s out, tuned for latency.

Path choice (logged once, and exposed as :attr:`H264Encoder.path`): ``h264_nvenc`` with its
low-latency settings when the machine has an NVIDIA encoder that opens, else ``libx264`` with
``ultrafast`` + ``zerolatency``. Both: no B-frames, one packet per frame, a VBV cap of two
frames' budget (so keyframes stay small enough for the socket buffers and a narrow link; at a
bit rate where that leaves a keyframe too few bits to be a picture, it gets
:data:`KEYFRAME_MIN_BITS_PER_PIXEL`), keyframes on demand. :meth:`H264Encoder.set_bitrate`
changes the target and the VBV limits of the running encoder for its next frame (congestion
control), without a keyframe.

Not thread-safe: one encoder is driven by one thread (the host's render thread). ``pts`` is in
the 1/90000 time base; the host starts at 0 for each connection.
"""

from __future__ import annotations

import fractions
import logging
from dataclasses import dataclass
from typing import Any

import av
import numpy as np

from farview.streaming._pyav_internals import context_pointer, set_rate_control
from farview.streaming.planes import yuv420_planes

log = logging.getLogger(__name__)

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
DEFAULT_BITRATE = 8_000_000
DEFAULT_MAX_FPS = 60
INTRA_REFRESH_S = 0.5
"""How long one intra-refresh sweep takes (``EncoderSettings.intra_refresh``)."""

_logged_paths: set[str] = set()


@dataclass(frozen=True, kw_only=True)
class EncoderSettings:
    """How to encode. Validated at construction."""

    width: int
    height: int
    bitrate: int = DEFAULT_BITRATE
    """Target bits per second; also the VBV max rate."""
    max_fps: int = DEFAULT_MAX_FPS
    """Highest frame rate frames are produced at; sizes the VBV buffer (one frame's budget)."""
    prefer_hardware: bool = True
    """Try h264_nvenc first."""
    intra_refresh: bool = False
    """Periodic intra refresh instead of keyframes: a column of intra blocks sweeps the picture
    every :meth:`refresh_frames` frames, so a loss heals by itself within about that many frames
    and no frame is much larger than the others. Each sweep starts with a frame that carries the
    parameter sets and a recovery point; forced keyframes are still IDR pictures."""
    threads: int = 2

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise ValueError(f"encoder size must be positive and even, got {self.width}x{self.height}")
        if not 100_000 <= self.bitrate <= 200_000_000:
            raise ValueError(f"bitrate must be 100 kbit/s..200 Mbit/s, got {self.bitrate}")
        if not 1 <= self.max_fps <= 240:
            raise ValueError(f"max_fps must be 1..240, got {self.max_fps}")

    def refresh_frames(self) -> int:
        """Frames one intra-refresh sweep takes: :data:`INTRA_REFRESH_S` at ``max_fps``."""
        return max(2, round(self.max_fps * INTRA_REFRESH_S))


KEYFRAME_MIN_BITS_PER_PIXEL = 0.08
"""The least a keyframe may take, in bits per pixel, whatever the VBV buffer of two frames'
budget allows (:meth:`H264Encoder.keyframe_buffer`). Measured on the sample model at 960×540
(x264, a fresh encoder): a keyframe held to 2.3 KB (0.036 bit/pixel, x264's floor at its
highest quantizer) was a grey picture, Y PSNR 11 dB, its marker unreadable; 0.05 bit/pixel gave
35 dB, 0.08 39 dB. Two frames' budget falls under 0.08 at about 0.6 Mbit/s and 15 frames a
second of 960×540, or 1 Mbit/s and 43 of 1280×720. Such a keyframe is encoded by a fresh encoder
whose buffer and rate give it room; the frames after it are back to their budget. It takes
longer than a frame's time on the link: the host sends the frames after it that much later
(``host.render_loop``)."""
X264_VBV_INIT = 0.9
"""How full x264's VBV buffer starts (its ``vbv-init`` default): a fresh encoder's first frame
may take this fraction of the buffer."""
MAX_VBV_GROWTH = 2.0
"""The encoder's VBV buffer grows by at most this factor a frame (:meth:`H264Encoder.set_bitrate`;
the rate with it)."""


class H264Encoder:
    """Encodes I420 frames to H.264 ``av.Packet``s with the lowest latency the machine allows."""

    def __init__(self, settings: EncoderSettings) -> None:
        self.settings = settings
        self._codec, self.path = self._open(settings)
        self._frame = av.VideoFrame(settings.width, settings.height, "yuv420p")
        self.frames_encoded = 0
        self.bitrate = settings.bitrate
        """The current target (bit/s): ``settings.bitrate`` until :meth:`set_bitrate`."""
        self.fps = settings.max_fps
        """The frame rate the VBV buffer is sized for (two frames' budget)."""
        self._applied = (settings.bitrate, self._vbv_buffer(settings.bitrate, settings.max_fps))
        """The rate and VBV buffer the encoder has now (see :data:`MAX_VBV_GROWTH`)."""
        self._wanted = self._applied
        self._ptr = context_pointer(self._codec)
        self.reopened_for_keyframes = 0
        """Keyframes for which the encoder was opened afresh with a bigger VBV buffer
        (:meth:`keyframe_buffer`)."""
        if self._ptr is None:
            log.warning("the encoder's VBV limits cannot be changed while it runs (PyAV internals "
                        "changed?): congestion control adjusts its average bit rate only")

    @staticmethod
    def _vbv_buffer(bitrate: int, max_fps: int) -> int:
        """Two frames' budget, in bits."""
        return max(8000, 2 * bitrate // max_fps)

    def keyframe_buffer(self) -> int:
        """The VBV buffer (bits) a keyframe needs for :data:`KEYFRAME_MIN_BITS_PER_PIXEL` at this
        size, allowing for the buffer starting :data:`X264_VBV_INIT` full."""
        return int(KEYFRAME_MIN_BITS_PER_PIXEL * self.settings.width * self.settings.height
                   / X264_VBV_INIT)

    def _reopen(self, rate: int, buffer: int) -> None:
        """A fresh encoder of the same settings at ``rate`` with a VBV buffer of ``buffer`` bits,
        :data:`X264_VBV_INIT` full: x264 keeps its buffer's fill in bits when the buffer grows,
        so a running encoder cannot be given room for one big frame; and its rate, not the
        buffer, sets the first frame's quantizer (a buffer of 5.8 KB alone still gave a
        2.9 KB keyframe where 5.2 KB were wanted)."""
        try:
            list(self._codec.encode(None))
        except Exception:
            pass
        self._codec, self.path = self._open(self.settings, rate, buffer)
        self._ptr = context_pointer(self._codec)
        self._applied = (rate, buffer)
        self.reopened_for_keyframes += 1

    def set_bitrate(self, bitrate: int, fps: int | None = None) -> None:
        """Aim the running encoder at ``bitrate`` bit/s from its next frame on, for frames that
        come ``fps`` a second (default ``max_fps``): each gets ``bitrate / fps`` bits, and the
        VBV buffer stays two frames' budget. No keyframe, no new encoder.

        Both encoders budget a frame as their rate over the frame rate they were opened with
        (``max_fps``), whatever the frames' timestamps say: at 20 frames a second of 60, x264
        made a third of the rate asked (0.16 of 0.5 Mbit/s), so a lower frame rate gave no frame
        more bits. They are told the rate scaled by ``max_fps / fps`` instead (and the VBV max
        rate with it); :attr:`bitrate` stays the rate asked for."""
        bitrate = max(100_000, min(200_000_000, int(bitrate)))
        fps = self.settings.max_fps if fps is None else max(1, min(self.settings.max_fps, int(fps)))
        if (bitrate, fps) == (self.bitrate, self.fps):
            return
        self._wanted = (bitrate * self.settings.max_fps // fps, self._vbv_buffer(bitrate, fps))
        self.bitrate, self.fps = bitrate, fps
        self._step_rate_control()

    def _step_rate_control(self) -> None:
        """Move the encoder's rate and VBV buffer towards :attr:`_wanted`: down at once, up by
        at most :data:`MAX_VBV_GROWTH` a frame. x264 keeps its buffer's fill in bits when the
        buffer grows (``x264_ratecontrol_init_reconfigurable``), so a buffer 16-64 times bigger
        read as nearly empty, and the next frame came out all skipped: the picture before it
        again (5 frames in 1,500 with random changes, every one right after a big rise)."""
        (rate, buf), (have_rate, have_buf) = self._wanted, self._applied
        if (rate, buf) == (have_rate, have_buf):
            return
        grow = min(1.0, MAX_VBV_GROWTH * have_buf / buf) if buf > have_buf else 1.0
        step = (max(have_rate, int(rate * grow)) if rate > have_rate else rate,
                max(have_buf, int(buf * grow)) if buf > have_buf else buf)
        set_rate_control(self._codec, self._ptr, *step)
        self._applied = step

    @staticmethod
    def _open(s: EncoderSettings, rate: int | None = None,
              buffer: int | None = None) -> tuple[Any, str]:
        """Open the first encoder that opens, at ``rate`` (default ``s.bitrate``) with a VBV
        buffer of ``buffer`` bits (default two frames' budget)."""
        # VBV through FFmpeg's own maxrate/bufsize: the wrappers re-read them before each frame
        # (and reset x264's own vbv-* options to them), which is how set_bitrate works.
        rate = s.bitrate if rate is None else rate
        buffer = H264Encoder._vbv_buffer(s.bitrate, s.max_fps) if buffer is None else buffer
        vbv = {"maxrate": str(rate), "bufsize": str(buffer)}
        candidates: list[tuple[str, dict[str, str]]] = []
        refresh = {"intra-refresh": "1"} if s.intra_refresh else {}
        if s.prefer_hardware:
            candidates.append(("h264_nvenc", {
                "preset": "p1", "tune": "ull", "zerolatency": "1", "delay": "0",
                "rc": "cbr", "bf": "0", "forced-idr": "1", "rc-lookahead": "0", **vbv, **refresh,
            }))
        candidates.append(("libx264", {
            "preset": "ultrafast", "tune": "zerolatency", **vbv,
            "x264-params": "bframes=0:repeat-headers=1:sliced-threads=1:scenecut=0"
                           + (":intra-refresh=1" if s.intra_refresh else ""),
        }))
        last_error: Exception | None = None
        for name, options in candidates:
            try:
                codec: Any = av.CodecContext.create(name, "w")
                codec.width = s.width
                codec.height = s.height
                codec.pix_fmt = "yuv420p"
                codec.time_base = VIDEO_TIME_BASE
                codec.framerate = fractions.Fraction(s.max_fps, 1)
                codec.bit_rate = rate
                # keyframes only on demand; with intra refresh, the sweep's length
                codec.gop_size = s.refresh_frames() if s.intra_refresh else 100000
                codec.max_b_frames = 0
                codec.thread_count = s.threads if name == "libx264" else 0
                codec.options = options
                codec.open()
            except Exception as exc:
                last_error = exc
                log.debug("encoder %s unavailable: %s", name, exc)
                continue
            path = "nvenc" if name == "h264_nvenc" else "libx264"
            if path not in _logged_paths:
                _logged_paths.add(path)
                log.info("video encoder: %s (%dx%d, %d kbit/s, up to %d fps%s)",
                         name, s.width, s.height, s.bitrate // 1000, s.max_fps,
                         f", intra refresh every {s.refresh_frames()} frames" if s.intra_refresh else "")
            return codec, path
        raise RuntimeError(f"no H.264 encoder could be opened: {last_error}")

    @property
    def codec_name(self) -> str:
        return str(self._codec.name)

    def encode(self, y: np.ndarray, u: np.ndarray, v: np.ndarray, pts: int,
               keyframe: bool = False) -> list[Any]:
        """Encode one frame given as Y, U, V arrays (copied into the encoder's own frame);
        returns its packets (one for both encoders in this configuration)."""
        frame = self._frame
        for plane, data in zip(yuv420_planes(frame), (y, u, v), strict=True):
            plane[:] = data
        return self.encode_frame(frame, pts, keyframe)

    def encode_frame(self, frame: av.VideoFrame, pts: int, keyframe: bool = False) -> list[Any]:
        """Encode a ``yuv420p`` frame of the encoder's size as it is (no copy, no conversion);
        sets its ``pts``, time base and picture type. Returns its packets."""
        if (frame.format.name, frame.width, frame.height) != (
                "yuv420p", self.settings.width, self.settings.height):
            raise ValueError(f"the encoder takes yuv420p {self.settings.width}x{self.settings.height}"
                             f" frames, got {frame.format.name} {frame.width}x{frame.height}")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        frame.pict_type = av.video.frame.PictureType.I if keyframe else av.video.frame.PictureType.NONE
        if keyframe and self.keyframe_buffer() > self._applied[1]:
            # too few bits for a picture at this rate: room for one (a frame's budget at the
            # rate opened with is the keyframe's), and back to two frames' budget and the
            # rate asked for from the next frame on (_step_rate_control: down at once)
            self._reopen(max(self._applied[0], int(self.keyframe_buffer() * X264_VBV_INIT)
                             * self.settings.max_fps), self.keyframe_buffer())
        packets = list(self._codec.encode(frame))
        self._step_rate_control()  # (for the next frame: a rise still under way)
        for p in packets:
            p.time_base = VIDEO_TIME_BASE
        self.frames_encoded += 1
        return packets

    def close(self) -> None:
        try:
            list(self._codec.encode(None))
        except Exception:
            pass

