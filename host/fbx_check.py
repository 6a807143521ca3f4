"""A binary FBX file's structure checked before the Open Asset Import Library reads it.

The library allocates each array of a binary FBX file at the size the array declares (its
element count times the element's size, up to 4 GiB) before it inflates the compressed bytes
into it: a 637-byte file declaring one array of 4 GiB took 6.2 GB of memory and 17 s to read
(found by hand, with a file written to the format's description). :func:`check` walks the file's
records (their offsets, property lists and nesting, as the library's tokenizer does, without
reading the arrays' data) and refuses:

- a structure the library would refuse anyway (offsets past the end or backwards, a property
  list of the wrong length, an unknown property type, nesting over :data:`MAX_DEPTH`), naming
  the record and its offset;
- an array that declares more than its stored bytes can hold: uncompressed, exactly its size;
  compressed, at most :data:`DEFLATE_MAX_RATIO` times its compressed bytes (deflate's limit);
- arrays declaring more than the budget in all (``LimitExceeded``): :func:`array_budget`.

What passes makes the library allocate for arrays no more than the budget and no more than
about a thousand times the file's size. ASCII FBX files (and anything else) pass untouched:
their arrays are as long as their text. Pure Python, reading the file through ``mmap``.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path

MAGIC = b"Kaydara FBX Binary"
"""What the library reads a file starting with as binary FBX; after five more bytes comes the
version (uint32), and 64-bit offsets from version 7500."""
HEADER_BYTES = 27
DEFLATE_MAX_RATIO = 1032
"""The most deflate can expand: 258 bytes from a 2-bit code (RFC 1951), about 1032 to 1."""
ARRAY_SIZES = {"f": 4, "i": 4, "d": 8, "l": 8, "c": 1}
"""The array property types the library reads and their elements' sizes."""
SCALAR_SIZES = {"Y": 2, "C": 1, "I": 4, "F": 4, "D": 8, "L": 8}
"""The scalar property types the library reads and their sizes (a ``b`` property, which the
library skips, takes the rest of its record's properties, as there)."""
MAX_DEPTH = 64
"""Records nested deeper are refused (a mesh's arrays sit four deep)."""
BYTES_PER_TRIANGLE = 512
"""Decoded array bytes allowed per triangle of the budget, generously: a triangle's three
polygon-vertex indices, and per polygon vertex in doubles a normal, a tangent and a binormal
with their weights, a texture coordinate and its index, and a colour (about 460 bytes), with its
share of the control points and edges. (The ratio check, not this budget, is what stops a small
file declaring gigabytes.)"""
MIN_ARRAY_BUDGET = 64 << 20
"""The budget never goes under this (a small session still converts a file with spare arrays)."""


class FbxError(ValueError):
    """The file is not a well-formed binary FBX, or declares more array data than the budget;
    ``limit``: over the budget rather than malformed."""

    def __init__(self, message: str, limit: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


def array_budget(max_triangles: int) -> int:
    """Bytes of decoded arrays allowed for a conversion whose budget is ``max_triangles``."""
    return max(MIN_ARRAY_BUDGET, max_triangles * BYTES_PER_TRIANGLE)


class _Walk:
    def __init__(self, data: mmap.mmap | bytes, wide: bool, budget: int) -> None:
        self.data = data
        self.size = len(data)
        self.head = struct.Struct("<QQQB" if wide else "<IIIB")
        self.null = 25 if wide else 13
        self.budget = budget
        self.declared = 0

    def fail(self, at: int, path: str, what: str) -> FbxError:
        where = f"record {path} at byte {at:,}" if path else f"byte {at:,}"
        return FbxError(f"{where}: {what}")

    def record(self, at: int, limit: int, path: str, depth: int) -> int:
        """Check the record at ``at`` (inside ``[at, limit)``); its end, or 0 for a null
        record."""
        if at + self.head.size > limit:
            raise self.fail(at, path, "a record header runs past its parent's end")
        end, count, props_len, name_len = (int(v) for v in self.head.unpack_from(self.data, at))
        if end == 0:
            return 0
        name = "".join(  # (shown in messages: printable ASCII only, 40 characters at most)
            chr(b) if 32 <= b < 127 else "?"
            for b in self.data[at + self.head.size:at + self.head.size + min(name_len, 40)])
        path = f"{path}/{name}" if path else name
        if depth > MAX_DEPTH:
            raise self.fail(at, path, f"records are nested more than {MAX_DEPTH} deep")
        if end > limit or end <= at:
            raise self.fail(at, path, f"its end offset {end:,} is outside {at:,}..{limit:,}")
        cursor = at + self.head.size + name_len
        props_end = cursor + props_len
        if props_end > end:
            raise self.fail(at, path, f"its {props_len:,} bytes of properties run past its end")
        for _ in range(count):
            cursor = self.prop(cursor, props_end, at, path)
        if cursor != props_end:
            raise self.fail(at, path, f"its {count} properties take {cursor - at:,} bytes, "
                            f"not the {props_len:,} it declares")
        if cursor < end:  # nested records, then a null record
            if end - cursor < self.null:
                raise self.fail(at, path, "its nested records have no null record after them")
            while cursor < end - self.null:
                nested = self.record(cursor, end - self.null, path, depth + 1)
                if nested == 0:
                    raise self.fail(cursor, path, "a null record before its end")
                cursor = nested
            if any(self.data[end - self.null:end]):
                raise self.fail(at, path, "its nested records do not end with a null record")
        return end

    def prop(self, cursor: int, end: int, at: int, path: str) -> int:
        if cursor >= end:
            raise self.fail(at, path, "it has fewer properties than it declares")
        kind = chr(self.data[cursor])
        cursor += 1
        if kind in SCALAR_SIZES:
            cursor += SCALAR_SIZES[kind]
        elif kind == "b":
            cursor = end
        elif kind in ("S", "R"):
            if cursor + 4 > end:
                raise self.fail(at, path, f"a {kind} property runs past its properties")
            cursor += 4 + int(struct.unpack_from("<I", self.data, cursor)[0])
        elif kind in ARRAY_SIZES:
            if cursor + 12 > end:
                raise self.fail(at, path, "an array property runs past its properties")
            count, encoding, stored = (int(v) for v in struct.unpack_from("<III", self.data, cursor))
            cursor += 12 + stored
            size = count * ARRAY_SIZES[kind]
            if encoding not in (0, 1):
                raise self.fail(at, path, f"an array has encoding {encoding} (0 or 1 expected)")
            if encoding == 0 and size != stored:
                raise self.fail(at, path, f"an array of {count:,} '{kind}' values "
                                f"({size:,} bytes) stores {stored:,} bytes")
            if encoding == 1 and size > stored * DEFLATE_MAX_RATIO:
                raise self.fail(at, path, f"an array declares {count:,} '{kind}' values "
                                f"({size:,} bytes), more than its {stored:,} compressed bytes "
                                "can hold")
            self.declared += size
            if self.declared > self.budget:
                raise FbxError(f"its arrays declare more than {self.budget:,} bytes (at record "
                               f"{path}, byte {at:,}), over the budget for this conversion",
                               limit=True)
        else:
            raise self.fail(at, path, f"a property has the unknown type {kind!r}")
        if cursor > end:
            raise self.fail(at, path, f"a {kind} property runs past its properties")
        return cursor


def check_bytes(data: mmap.mmap | bytes, max_array_bytes: int) -> int:
    """:func:`check` of a file's contents; returns the bytes its arrays declare (0 when it is
    not a binary FBX file)."""
    if data[:len(MAGIC)] != MAGIC:
        return 0
    if len(data) < HEADER_BYTES:
        raise FbxError("it ends inside the binary FBX header")
    version = int(struct.unpack_from("<I", data, 23)[0])
    if not 1000 <= version < 10000:  # (files of 2006-2020 say 6100-7700)
        raise FbxError(f"its binary FBX header is damaged: it names version {version:,}, which "
                       "no exporter writes (bytes 18-26 are "
                       f"{bytes(data[18:HEADER_BYTES]).hex(' ')}; a file sent as text loses its "
                       "zero bytes)")
    walk = _Walk(data, version >= 7500, max_array_bytes)
    cursor = HEADER_BYTES
    while cursor < len(data):
        end = walk.record(cursor, len(data), "", 0)
        if end == 0:  # the top level's null record; a footer follows
            break
        cursor = end
    return walk.declared


def check(path: Path, max_array_bytes: int) -> int:
    """Refuse ``path`` if it is a binary FBX file that is malformed or whose arrays declare more
    than ``max_array_bytes`` (see the module's docstring); returns the bytes its arrays declare
    (0 for an ASCII FBX file or anything else). Raises :class:`FbxError`."""
    with path.open("rb") as f:
        if f.seek(0, 2) == 0:
            return 0
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return check_bytes(data, max_array_bytes)
