"""A frame marker that survives H.264: 32 bits burned into a corner of the picture as blocks.

Used by ``farview bench --verify`` to prove that the pose sequence a frame's metadata claims is
the one its pixels were rendered with. Layout: two rows of 16 square blocks in the bottom-left
corner of the luma plane, most significant bit first; a set bit is white (Y 235), a clear bit
black (Y 16), and the chroma under the marker is neutral (128) so colour bleeding cannot flip a
bit. Blocks are up to 16 px (a macroblock; at least 4 px on tiny frames). Pure numpy, no I/O.

What a read can give: the frame's value; None (a block left half-way between black and white);
or, when a starved encoder skipped the marker's macroblocks, the value of an earlier frame
still standing there (seen once in CI: noise at 2 Mbit/s, 320×240). The bench counts the last
as a mismatch, which it is: those pixels do not show this frame's pose. A read never gives a
value no frame carried.
"""

from __future__ import annotations

import numpy as np

BITS = 32
PER_ROW = 16
Y_ONE, Y_ZERO = 235, 16


def block_size(width: int, height: int) -> int:
    # 16 px (a whole macroblock) where the frame is large enough: flat macroblocks survive even
    # the coarsest quantiser a VBV-capped encoder falls back to on a busy frame.
    return max(4, min(16, width // (PER_ROW * 2), height // 8)) & ~1


def burn(y: np.ndarray, u: np.ndarray, v: np.ndarray, value: int) -> None:
    """Write ``value`` (0..2^32-1) into the planes, in place."""
    h, w = y.shape
    b = block_size(w, h)
    top = h - 2 * b
    for i in range(BITS):
        row, col = divmod(i, PER_ROW)
        bit = (value >> (BITS - 1 - i)) & 1
        y0, x0 = top + row * b, col * b
        y[y0:y0 + b, x0:x0 + b] = Y_ONE if bit else Y_ZERO
    u[top // 2:, : PER_ROW * b // 2] = 128
    v[top // 2:, : PER_ROW * b // 2] = 128


def read(y: np.ndarray) -> int | None:
    """The value burned into a decoded luma plane, or None when the marker is not legible."""
    h, w = y.shape
    b = block_size(w, h)
    top = h - 2 * b
    inset = max(1, b // 4)
    value = 0
    for i in range(BITS):
        row, col = divmod(i, PER_ROW)
        y0, x0 = top + row * b, col * b
        mean = float(y[y0 + inset:y0 + b - inset, x0 + inset:x0 + b - inset].mean())
        if 80 < mean < 170:  # neither clearly black nor clearly white: not a marker
            return None
        value = (value << 1) | (1 if mean >= 128 else 0)
    return value
