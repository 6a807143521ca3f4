"""Read an X window's pixels from outside its process: ``xwd`` (x11-utils) and a small XWD
parser (ZPixmap, 24/32 bits per pixel, the format Xvfb's TrueColor visuals produce)."""

from __future__ import annotations

import struct
import subprocess
import time

import numpy as np


def grab_window(window_id: str, display: str, settle: float = 10.0) -> np.ndarray:
    """The window's contents as (H, W, 3) uint8 RGB.

    X answers ``GetImage`` on a window that is not mapped yet (or is being remapped) with
    BadMatch, so a failed grab is retried for up to ``settle`` seconds before it is an error."""
    deadline = time.monotonic() + settle
    while True:
        done = subprocess.run(["xwd", "-silent", "-id", window_id, "-display", display],
                              capture_output=True, timeout=20)
        if done.returncode == 0:
            return parse_xwd(done.stdout)
        if time.monotonic() > deadline:
            raise RuntimeError(f"xwd could not read window {window_id} on {display}: "
                               f"{done.stderr.decode(errors='replace').strip()}")
        time.sleep(0.2)


def parse_xwd(raw: bytes) -> np.ndarray:
    header_size, version = struct.unpack(">II", raw[:8])
    if version != 7:
        raise ValueError(f"unsupported XWD version {version}")
    fields = struct.unpack(">25I", raw[:100])
    (_hs, _v, pixmap_format, depth, width, height, _xoff, byte_order, _unit, _bit_order, _pad,
     bits_per_pixel, bytes_per_line, _visual_class, red_mask, green_mask, blue_mask, _bprgb,
     _map_entries, ncolors, *_rest) = fields
    if pixmap_format != 2 or bits_per_pixel not in (24, 32):
        raise ValueError(f"unsupported XWD pixmap: format {pixmap_format}, {bits_per_pixel} bpp")
    offset = header_size + ncolors * 12
    data = np.frombuffer(raw, dtype=np.uint8, count=bytes_per_line * height, offset=offset)
    rows = data.reshape(height, bytes_per_line)[:, : width * (bits_per_pixel // 8)]
    px = rows.reshape(height, width, bits_per_pixel // 8).astype(np.uint32)
    if byte_order == 0:  # LSBFirst
        value = sum(px[..., i] << (8 * i) for i in range(px.shape[-1]))
    else:
        n = px.shape[-1]
        value = sum(px[..., i] << (8 * (n - 1 - i)) for i in range(n))

    def channel(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((value & mask) >> shift).astype(np.uint8)

    del depth
    return np.stack([channel(red_mask), channel(green_mask), channel(blue_mask)], axis=-1)
