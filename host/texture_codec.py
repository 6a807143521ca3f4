"""Block-compressed textures: BC1, BC3 (S3TC's DXT1 and DXT5) and BC5 in NumPy, and DDS files.

A conversion (:mod:`host.convert`) writes each big colour texture a second time, block
compressed with its whole mip chain, as a DDS image named by the texture's
``MSFT_texture_dds`` extension (the PNG or JPEG stays as the texture's ``source``, for viewers
without it). The loader (:mod:`host.gltf`) takes the DDS image where a texture names one and
decodes no PNG or JPEG for it; the renderer uploads its blocks as they are
(``glCompressedTexImage2D``). A 4,096² texture then takes 11 MB with its mips instead of 89 MB
as RGBA8 and no decoding at load; what it costs is BC1's error (4 colours a 4×4 block, on a
line between two RGB565 end points).

The encoder fits each block's end points to the principal axis of its colours (a few power
iterations of their covariance), then picks each pixel's nearest palette entry (by its
projection on the end points' line): plain range fitting, no iterative refinement. BC1 is used
where every pixel is opaque, BC3 (BC1 colour plus an 8-value alpha block) otherwise, and BC5
(two such blocks: x and y) for normal maps, whose z the fragment shader makes again
(``mesh.frag.glsl``: GL reads such a texture with alpha 0, the sign to do so). Mips are 2×2 box
averages of the stored values down to 1×1 (an odd side drops its last row or column: GL's level
sizes are ``max(1, side >> level)``).

DDS files are read strictly (:func:`read_dds`): a legacy header with fourCC ``DXT1`` or
``DXT5`` (or ``ATI2``/``BC5U``), or a DX10 header with a BC1, BC3, BC5 or BC7 format (BC7, as
other tools write it, is passed to GL as it is, not decoded here), a 2D texture of sides up
to :data:`MAX_SIDE`, and at least the bytes its levels need; anything else is a
:class:`DdsError` saying what was wrong.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BC1 = "BC1"
BC3 = "BC3"
BC5 = "BC5"
BC7 = "BC7"
BLOCK_BYTES = {BC1: 8, BC3: 16, BC5: 16, BC7: 16}
DECODED = frozenset({BC1, BC3, BC5})
"""The formats farview encodes and decodes; BC7 blocks (as other tools write them) are only
passed to GL (``ARB_texture_compression_bptc``)."""
MAX_SIDE = 16384
MIN_COMPRESSED_SIDE = 512
"""A conversion block-compresses textures with a side of at least this many pixels (smaller
ones save little, and their sharp edges are what BC1 blurs most)."""
DDS_MIME = "image/vnd-ms.dds"
_CHUNK_BLOCKS = 1 << 16
"""Blocks encoded at a time (bounds the temporary arrays: about 30 MB)."""
_POWER_ITERATIONS = 6


class DdsError(ValueError):
    """A DDS file farview cannot use; the message says why."""


@dataclass(frozen=True, eq=False)
class CompressedImage:
    """A block-compressed texture: its format, level 0's size and each level's blocks."""

    format: str
    width: int
    height: int
    levels: tuple[bytes, ...]
    """Level 0 first; level ``i`` is ``max(1, width >> i)`` × ``max(1, height >> i)``."""

    @property
    def nbytes(self) -> int:
        return sum(len(b) for b in self.levels)

    def level_size(self, level: int) -> tuple[int, int]:
        return max(1, self.width >> level), max(1, self.height >> level)


def level_bytes(fmt: str, width: int, height: int) -> int:
    """The bytes of one level of ``width`` × ``height`` pixels in ``fmt``."""
    return ((width + 3) // 4) * ((height + 3) // 4) * BLOCK_BYTES[fmt]


def full_chain(width: int, height: int) -> int:
    """How many levels a full mip chain of ``width`` × ``height`` has (down to 1×1)."""
    return max(width, height).bit_length()


# -- encoding -----------------------------------------------------------------------------------

def compress(rgba: npt.NDArray[np.uint8], mips: bool = True, normal_map: bool = False
             ) -> CompressedImage:
    """``rgba`` ((height, width, 4), top row first) as BC1, or BC3 where any pixel is not
    opaque, with its mip chain (``mips``) down to 1×1; a ``normal_map`` as BC5 (its red and
    green, x and y: z is made again from them when it is drawn)."""
    if rgba.ndim != 3 or rgba.shape[2] != 4 or rgba.dtype != np.uint8:
        raise ValueError("compress takes (height, width, 4) uint8 pixels")
    height, width = rgba.shape[:2]
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise ValueError(f"a {width}×{height} image cannot be compressed (sides 1..{MAX_SIDE})")
    fmt = BC5 if normal_map else BC1 if bool((rgba[:, :, 3] == 255).all()) else BC3
    levels = []
    level = rgba
    for i in range(full_chain(width, height) if mips else 1):
        if i:
            level = _half(level)
        levels.append(_encode_level(level, fmt))
    return CompressedImage(fmt, width, height, tuple(levels))


def _half(a: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The next mip level: 2×2 averages, rounded (sums in 16 bits: a 4,096² level's
    temporaries are 64 MB)."""
    h, w = a.shape[:2]
    nh, nw = max(1, h // 2), max(1, w // 2)
    f = a.astype(np.uint16)
    n = 1
    if h > 1:
        f, n = f[0:2 * nh:2] + f[1:2 * nh:2], 2 * n
    if w > 1:
        f, n = f[:, 0:2 * nw:2] + f[:, 1:2 * nw:2], 2 * n
    return np.asarray((f + n // 2) // n, dtype=np.uint8)


def _blocks(rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(blocks, 16, 4): each 4×4 block's pixels row by row, blocks row by row; a side that is
    not a multiple of 4 is padded with its last row or column."""
    h, w = rgba.shape[:2]
    ph, pw = -h % 4, -w % 4
    if ph or pw:
        rgba = np.pad(rgba, ((0, ph), (0, pw), (0, 0)), mode="edge")
    bh, bw = rgba.shape[0] // 4, rgba.shape[1] // 4
    return rgba.reshape(bh, 4, bw, 4, 4).transpose(0, 2, 1, 3, 4).reshape(bh * bw, 16, 4)


def _encode_level(rgba: npt.NDArray[np.uint8], fmt: str) -> bytes:
    blocks = _blocks(rgba)
    out = np.empty((len(blocks), BLOCK_BYTES[fmt]), dtype=np.uint8)
    for s in range(0, len(blocks), _CHUNK_BLOCKS):
        part = blocks[s:s + _CHUNK_BLOCKS]
        if fmt == BC5:  # two BC4 blocks: red, then green
            out[s:s + len(part), :8] = _encode_alpha(part[:, :, 0])
            out[s:s + len(part), 8:] = _encode_alpha(part[:, :, 1])
            continue
        colour = _encode_colour(part[:, :, :3].astype(np.float32))
        if fmt == BC1:
            out[s:s + len(part)] = colour
        else:
            out[s:s + len(part), :8] = _encode_alpha(part[:, :, 3])
            out[s:s + len(part), 8:] = colour
    return out.tobytes()


def _to565(c: npt.NDArray[np.float32]) -> npt.NDArray[np.uint16]:
    c = np.clip(c, 0.0, 255.0)
    r = np.rint(c[:, 0] * (31 / 255)).astype(np.uint16)
    g = np.rint(c[:, 1] * (63 / 255)).astype(np.uint16)
    b = np.rint(c[:, 2] * (31 / 255)).astype(np.uint16)
    return np.asarray((r << 11) | (g << 5) | b, dtype=np.uint16)


def _from565(c: npt.NDArray[np.uint16]) -> npt.NDArray[np.float32]:
    c = c.astype(np.uint32)
    r, g, b = (c >> 11) & 31, (c >> 5) & 63, c & 31
    return np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)],
                    axis=-1).astype(np.float32)


def _encode_colour(px: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """(n, 16, 3) colours → (n, 8) BC1 colour blocks in four-colour mode."""
    n = len(px)
    mean = px.mean(axis=1)
    centred = px - mean[:, None, :]
    cov = np.einsum("nki,nkj->nij", centred, centred)
    axis = np.ones((n, 3), dtype=np.float32)
    for _ in range(_POWER_ITERATIONS):
        axis = np.einsum("nij,nj->ni", cov, axis)
        norm = np.linalg.norm(axis, axis=1, keepdims=True)
        axis = np.where(norm > 1e-6, axis / np.maximum(norm, 1e-6), 0.0).astype(np.float32)
    proj = np.einsum("nki,ni->nk", centred, axis)
    hi = mean + axis * proj.max(axis=1, keepdims=True)
    lo = mean + axis * proj.min(axis=1, keepdims=True)
    c0, c1 = _to565(hi), _to565(lo)
    swap = c0 < c1  # four-colour mode needs c0 > c1
    c0, c1 = np.where(swap, c1, c0), np.where(swap, c0, c1)
    p0, p1 = _from565(c0), _from565(c1)
    # The four colours lie on the line from p0 to p1, at 0, 1/3, 2/3 and 1 of the way: a
    # pixel's nearest is the one nearest its projection on that line (the distance off the
    # line is the same for all four).
    d = p1 - p0
    length2 = np.maximum((d * d).sum(axis=1), 1e-6)
    t = np.einsum("nki,ni->nk", px - p0[:, None, :], d) / length2[:, None]
    step = np.clip(np.rint(t * 3), 0, 3).astype(np.uint32)
    idx = np.array([0, 2, 3, 1], dtype=np.uint32)[step]  # 0, 1/3, 2/3, 1 → codes 0, 2, 3, 1
    idx[c0 == c1] = 0
    bits = (idx << (2 * np.arange(16, dtype=np.uint32))).sum(axis=1, dtype=np.uint32)
    rec = np.empty(n, dtype=[("c0", "<u2"), ("c1", "<u2"), ("i", "<u4")])
    rec["c0"], rec["c1"], rec["i"] = c0, c1, bits
    return rec.view(np.uint8).reshape(n, 8)


def _alpha_palette(a0: npt.NDArray[np.float32], a1: npt.NDArray[np.float32]
                   ) -> npt.NDArray[np.float32]:
    """(n, 8) values of BC3 alpha blocks (a0 > a1: six steps between them; else four, then 0
    and 255)."""
    eight = np.stack([a0, a1, *[((7 - k) * a0 + k * a1) / 7 for k in range(1, 7)]], axis=1)
    six = np.stack([a0, a1, *[((5 - k) * a0 + k * a1) / 5 for k in range(1, 5)],
                    np.zeros_like(a0), np.full_like(a0, 255.0)], axis=1)
    return np.where((a0 > a1)[:, None], eight, six)


def _encode_alpha(alpha: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """(n, 16) values → (n, 8) BC3 alpha blocks, which are BC4 blocks too (eight-value mode,
    or all one value)."""
    n = len(alpha)
    a0 = alpha.max(axis=1).astype(np.float32)
    a1 = alpha.min(axis=1).astype(np.float32)
    palette = _alpha_palette(a0, a1)
    idx = np.abs(alpha[:, :, None].astype(np.float32) - palette[:, None, :]).argmin(axis=2)
    idx = idx.astype(np.uint64)
    idx[a0 == a1] = 0
    bits = (idx << (3 * np.arange(16, dtype=np.uint64))).sum(axis=1, dtype=np.uint64)
    out = np.empty((n, 8), dtype=np.uint8)
    out[:, 0], out[:, 1] = a0, a1
    out[:, 2:] = bits.astype("<u8").view(np.uint8).reshape(n, 8)[:, :6]
    return out


# -- decoding -----------------------------------------------------------------------------------

def decompress(image: CompressedImage, level: int = 0) -> npt.NDArray[np.uint8]:
    """One level of ``image`` as (height, width, 4) RGBA (for a GL without S3TC, a conversion
    writing it again, and tests); a BC5 normal map with its z made again from x and y (blue),
    opaque."""
    if image.format not in DECODED:
        raise ValueError(f"{image.format} blocks are not decoded here (only passed to GL)")
    width, height = image.level_size(level)
    data = np.frombuffer(image.levels[level], dtype=np.uint8)
    bh, bw = (height + 3) // 4, (width + 3) // 4
    blocks = data.reshape(bh * bw, BLOCK_BYTES[image.format])
    if image.format == BC1:
        px = _decode_colour(blocks, three_colour=True)
    elif image.format == BC5:
        px = np.empty((len(blocks), 16, 4), dtype=np.uint8)
        px[:, :, 0], px[:, :, 1] = _decode_alpha(blocks[:, :8]), _decode_alpha(blocks[:, 8:])
        xy = px[:, :, :2].astype(np.float32) * (2 / 255) - 1
        z = np.sqrt(np.maximum(0.0, 1.0 - (xy ** 2).sum(axis=2)))
        px[:, :, 2] = np.clip(np.rint((z + 1) * 127.5), 0, 255).astype(np.uint8)
        px[:, :, 3] = 255
    else:
        px = _decode_colour(blocks[:, 8:], three_colour=False)
        px[:, :, 3] = _decode_alpha(blocks[:, :8])
    full = px.reshape(bh, bw, 4, 4, 4).transpose(0, 2, 1, 3, 4).reshape(bh * 4, bw * 4, 4)
    return np.ascontiguousarray(full[:height, :width])


def _decode_colour(blocks: npt.NDArray[np.uint8], three_colour: bool) -> npt.NDArray[np.uint8]:
    rec = blocks.copy().view(dtype=[("c0", "<u2"), ("c1", "<u2"), ("i", "<u4")]).reshape(-1)
    c0, c1 = rec["c0"], rec["c1"]
    p0, p1 = _from565(c0), _from565(c1)
    four = np.stack([p0, p1, (2 * p0 + p1) / 3, (p0 + 2 * p1) / 3], axis=1)
    n = len(rec)
    alpha = np.full((n, 4), 255.0, dtype=np.float32)
    palette = np.concatenate([four, alpha[:, :, None]], axis=2)
    if three_colour:
        three = np.stack([p0, p1, (p0 + p1) / 2, np.zeros_like(p0)], axis=1)
        three_a = np.concatenate([three, np.array([255, 255, 255, 0], np.float32)[None, :, None]
                                  .repeat(n, axis=0)], axis=2)
        palette = np.where((c0 <= c1)[:, None, None], three_a, palette)
    idx = (rec["i"][:, None] >> (2 * np.arange(16, dtype=np.uint32))) & 3
    px = np.take_along_axis(palette, idx[:, :, None].astype(np.intp), axis=1)
    return np.asarray(np.clip(np.rint(px), 0, 255), dtype=np.uint8)


def _decode_alpha(blocks: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    a0, a1 = blocks[:, 0].astype(np.float32), blocks[:, 1].astype(np.float32)
    palette = _alpha_palette(a0, a1)
    raw = np.zeros((len(blocks), 8), dtype=np.uint8)
    raw[:, :6] = blocks[:, 2:8]
    bits = raw.view("<u8").reshape(-1)
    idx = (bits[:, None] >> (3 * np.arange(16, dtype=np.uint64))) & np.uint64(7)
    a = np.take_along_axis(palette, idx.astype(np.intp), axis=1)
    return np.asarray(np.clip(np.rint(a), 0, 255), dtype=np.uint8)


# -- DDS files ----------------------------------------------------------------------------------

_MAGIC = b"DDS "
_HEADER = struct.Struct("<7I44x8I20x")
"""size, flags, height, width, pitch, depth, mip count, (reserved), then the pixel format
(size, flags, fourCC, bit count, four masks), then caps (ignored)."""
_CAPS = struct.Struct("<4I")
_DX10 = struct.Struct("<5I")
_DDSD_MIPMAPCOUNT = 0x20000
_DDPF_FOURCC = 0x4
_CAPS2_CUBE_OR_VOLUME = 0x200 | 0x200000
_FOURCC = {b"DXT1": BC1, b"DXT5": BC3, b"ATI2": BC5, b"BC5U": BC5}
_DXGI = {71: BC1, 72: BC1, 77: BC3, 78: BC3, 83: BC5, 98: BC7, 99: BC7}
"""BC1_UNORM(_SRGB), BC3_UNORM(_SRGB), BC5_UNORM, BC7_UNORM(_SRGB): the colour space is the
glTF material's to say."""


def write_dds(image: CompressedImage) -> bytes:
    """``image`` as a DDS file, every level: a legacy header with fourCC DXT1, DXT5 or ATI2
    (BC5); BC7, which has no fourCC, with a DX10 header."""
    fourcc = {BC1: b"DXT1", BC3: b"DXT5", BC5: b"ATI2", BC7: b"DX10"}[image.format]
    mipped = len(image.levels) > 1
    header = bytearray(124)
    struct.pack_into("<7I", header, 0, 124,
                     0x1 | 0x2 | 0x4 | 0x1000 | 0x80000 | (_DDSD_MIPMAPCOUNT if mipped else 0),
                     image.height, image.width, len(image.levels[0]), 0, len(image.levels))
    struct.pack_into("<2I4s5I", header, 72, 32, _DDPF_FOURCC, fourcc, 0, 0, 0, 0, 0)
    struct.pack_into("<I", header, 104, 0x1000 | (0x400008 if mipped else 0))
    dx10 = _DX10.pack(98, 3, 0, 1, 0) if image.format == BC7 else b""  # BC7_UNORM, 2D, 1
    return b"".join([_MAGIC, bytes(header), dx10, *image.levels])


def read_dds(data: bytes, max_bytes: int | None = None) -> CompressedImage:
    """A DDS file's BC1, BC3 or BC5 texture (see the module docstring); ``max_bytes``: refuse one
    whose levels take more."""
    if len(data) < 4 + _HEADER.size or data[:4] != _MAGIC:
        raise DdsError("not a DDS file (no 'DDS ' header)")
    (size, flags, height, width, _pitch, _depth, mips, pf_size, pf_flags, fourcc, *_masks
     ) = _HEADER.unpack_from(data, 4)
    if size != 124 or pf_size != 32:
        raise DdsError("its DDS header is malformed (wrong header or pixel format size)")
    _caps, caps2, _, _ = _CAPS.unpack_from(data, 4 + 104)
    if caps2 & _CAPS2_CUBE_OR_VOLUME:
        raise DdsError("it is a cube map or volume texture; only 2D textures are drawn")
    offset = 4 + 124
    code = fourcc.to_bytes(4, "little")
    if not pf_flags & _DDPF_FOURCC:
        raise DdsError("it holds uncompressed pixels; only BC1 (DXT1), BC3 (DXT5) and BC5 are "
                       "read")
    if code == b"DX10":
        if len(data) < offset + _DX10.size:
            raise DdsError("its DX10 header is cut short")
        dxgi, dimension, _misc, array_size, _ = _DX10.unpack_from(data, offset)
        offset += _DX10.size
        if dimension != 3 or array_size != 1:
            raise DdsError("it is not a single 2D texture")
        fmt = _DXGI.get(dxgi)
        if fmt is None:
            raise DdsError(f"its DXGI format {dxgi} is not BC1, BC3, BC5 or BC7")
    else:
        fmt = _FOURCC.get(code)
        if fmt is None:
            raise DdsError(f"its format {code!r} is not DXT1, DXT5 or ATI2 (BC5)")
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise DdsError(f"its size {width}×{height} is outside 1..{MAX_SIDE} pixels a side")
    count = mips if flags & _DDSD_MIPMAPCOUNT and mips > 0 else 1
    if count > full_chain(width, height):
        raise DdsError(f"it claims {count} mip levels; {width}×{height} has at most "
                       f"{full_chain(width, height)}")
    levels = []
    total = 0
    for i in range(count):
        n = level_bytes(fmt, max(1, width >> i), max(1, height >> i))
        total += n
        if max_bytes is not None and total > max_bytes:
            raise DdsError(f"its levels take over {max_bytes >> 20} MiB")
        if len(data) < offset + n:
            raise DdsError(f"it is cut short: level {i} needs {n} bytes, "
                           f"{max(0, len(data) - offset)} are there")
        levels.append(bytes(data[offset:offset + n]))
        offset += n
    return CompressedImage(fmt, width, height, tuple(levels))
