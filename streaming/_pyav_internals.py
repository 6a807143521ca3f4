"""The one PyAV / FFmpeg internal farview relies on: changing an open encoder's rate control.

Pinned to ``av==18.1.0`` (``pyproject.toml``); ``tests/streaming/test_pyav_internals.py`` fails if
what this relies on changes. What and why:

FFmpeg's libx264 and h264_nvenc wrappers re-read ``AVCodecContext.bit_rate``,
``rc_max_rate`` (``maxrate``) and ``rc_buffer_size`` (``bufsize``) before every frame and
reconfigure the running encoder when they changed: no new encoder, no keyframe. PyAV lets
Python write ``bit_rate`` but not the other two, and the VBV limits are what keep a frame small
enough for a narrow link. So :func:`set_rate_control` writes all three with FFmpeg's public
``av_opt_set_int`` on the context's own pointer, which PyAV keeps in the C struct of its
``CodecContext`` (a Cython object: the Python object header, the vtable pointer, then ``ptr``).
The pointer is checked before use: FFmpeg must read back the context's known bit rate and
GOP size through it, or nothing is written and the caller falls back to ``bit_rate`` alone.
"""

from __future__ import annotations

import ctypes
import glob
import logging
import os
from typing import Any

import av

log = logging.getLogger(__name__)

PINNED_AV = "18.1.0"
_PTR_OFFSET = 3 * ctypes.sizeof(ctypes.c_void_p)
"""Byte offset of ``CodecContext.ptr``: after ob_refcnt, ob_type and the Cython vtable."""
_AV_OPT_SEARCH_CHILDREN = 1

_lib: Any = None


def _libavutil() -> Any:
    """The libavutil PyAV itself loaded (its wheel bundles it; else the system's)."""
    global _lib
    if _lib is None:
        libs = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
        found = sorted(glob.glob(os.path.join(libs, "libavutil-*.so*")))
        lib = ctypes.CDLL(found[0] if found else "libavutil.so")
        lib.av_opt_set_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int64, ctypes.c_int]
        lib.av_opt_set_int.restype = ctypes.c_int
        lib.av_opt_get_int.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int,
                                       ctypes.POINTER(ctypes.c_int64)]
        lib.av_opt_get_int.restype = ctypes.c_int
        _lib = lib
    return _lib


def _get_int(lib: Any, ptr: int, name: str) -> int | None:
    out = ctypes.c_int64()
    if lib.av_opt_get_int(ptr, name.encode(), 0, ctypes.byref(out)) < 0:
        return None
    return int(out.value)


def context_pointer(codec: Any) -> int | None:
    """The ``AVCodecContext*`` of an open PyAV video encoder, or None when it cannot be found
    safely (the checks read the bit rate and the GOP size back through it)."""
    if av.__version__ != PINNED_AV or not isinstance(codec, av.codec.context.CodecContext) \
            or not codec.is_open:
        return None
    try:
        ptr = ctypes.c_void_p.from_address(id(codec) + _PTR_OFFSET).value
        if not ptr:
            return None
        lib = _libavutil()
        video: Any = codec
        if _get_int(lib, ptr, "b") != video.bit_rate or _get_int(lib, ptr, "g") != video.gop_size:
            return None
        return int(ptr)
    except (OSError, ValueError, AttributeError):
        return None


def set_rate_control(codec: Any, ptr: int | None, bitrate: int, bufsize: int) -> bool:
    """Set an open encoder's target bit rate, VBV max rate (the same) and VBV buffer for its next
    frame. ``ptr`` from :func:`context_pointer`; with None only ``bit_rate`` changes. True when
    the VBV limits changed too."""
    codec.bit_rate = int(bitrate)
    if ptr is None:
        return False
    lib = _libavutil()
    ok = int(lib.av_opt_set_int(ptr, b"maxrate", int(bitrate), 0)) >= 0
    return int(lib.av_opt_set_int(ptr, b"bufsize", int(bufsize), 0)) >= 0 and ok


def read_rate_control(ptr: int) -> tuple[int | None, int | None, int | None]:
    """(bit_rate, maxrate, bufsize) as FFmpeg holds them: for tests and logs."""
    lib = _libavutil()
    return _get_int(lib, ptr, "b"), _get_int(lib, ptr, "maxrate"), _get_int(lib, ptr, "bufsize")
