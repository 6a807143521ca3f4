"""A PLY file's header checked before the Open Asset Import Library reads the file.

The library trusts what a PLY header declares: a 2.5 KB file whose ``element face`` line had run
into the property line before it took 14 GB of memory in 20 s (found by a throwaway fuzz of the
converter). :func:`check` reads the header (at most :data:`MAX_HEADER_BYTES`), refuses
``format``, ``element`` and ``property`` lines that are not PLY's (and skips lines that start
with another word, as the library does), counts the rest of the file is too short to hold
(each value takes at least two bytes in ASCII, its type's size in binary), and counts over the
conversion's budget; what passes can make the library allocate no more than about the file's size.
Pure Python, no I/O beyond reading the header and the file's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MAX_HEADER_BYTES = 1 << 20
"""A header longer than this (comments included) is refused."""
SIZES = {"char": 1, "uchar": 1, "short": 2, "ushort": 2, "int": 4, "uint": 4, "float": 4,
         "double": 8, "int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "uint32": 4,
         "float32": 4, "float64": 8}
"""PLY's scalar types and their sizes in a binary file."""
INTEGER_TYPES = frozenset(SIZES) - {"float", "double", "float32", "float64"}
FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")


class PlyHeaderError(ValueError):
    """The header is not PLY's, or declares more than the file holds; ``limit``: over a budget
    rather than malformed."""

    def __init__(self, message: str, limit: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.limit = limit


@dataclass(frozen=True)
class Element:
    name: str
    count: int
    values: int
    """Values in a row, a list counting one (its length)."""
    min_bytes: int
    """Bytes a row takes at least in a binary file (lists empty)."""
    lists: int = 0
    """How many of its values are lists."""


def parse(header: bytes) -> tuple[str, list[Element]]:
    """The format and elements of ``header`` (the bytes up to and including ``end_header``'s
    line). Raises :class:`PlyHeaderError` naming the first bad line."""
    lines = header.decode("ascii", errors="replace").split("\n")
    if lines[0].rstrip("\r") != "ply":
        raise PlyHeaderError("it does not start with the line 'ply'")
    fmt = ""
    elements: list[Element] = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.rstrip("\r")
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        bad = f"line {number} of its header ({line[:60]!r}) is not PLY's"
        if words[0] == "end_header":
            if len(words) != 1 or not fmt:
                raise PlyHeaderError(bad if fmt else "its header names no format")
            return fmt, elements
        if words[0] == "format":
            if len(words) != 3 or words[1] not in FORMATS or fmt or elements:
                raise PlyHeaderError(bad)
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3 or not words[2].isdigit() or len(words[2]) > 15:
                raise PlyHeaderError(bad)
            elements.append(Element(words[1], int(words[2]), 0, 0))
        elif words[0] == "property":
            if not elements:
                raise PlyHeaderError(bad)
            last = elements[-1]
            if len(words) == 3 and words[1] in SIZES:
                size = SIZES[words[1]]
            elif (len(words) == 5 and words[1] == "list" and words[2] in INTEGER_TYPES
                  and words[3] in SIZES):
                size = SIZES[words[2]]
            else:
                raise PlyHeaderError(bad)
            elements[-1] = Element(last.name, last.count, last.values + 1, last.min_bytes + size,
                                   last.lists + (words[1] == "list"))
        # other lines are skipped, as the library skips them (Blender 2.47 wrote a comment
        # without the word "comment": "Created by Blender3D 247 - www.blender.org, ...")
    raise PlyHeaderError("its header has no end_header line")


def check(path: Path, max_primitives: int) -> None:
    """Refuse ``path`` (a ``.ply``) unless its header is PLY's, the file is long enough for
    every row it declares, and its faces (or, without faces, its points) are at most
    ``max_primitives``. Raises :class:`PlyHeaderError`."""
    with path.open("rb") as f:
        head = f.read(MAX_HEADER_BYTES)
        size = f.seek(0, 2)
    end = head.find(b"\nend_header")
    if end < 0:
        raise PlyHeaderError("it has no end_header line in its first "
                             f"{MAX_HEADER_BYTES // 1024} KiB" if len(head) == MAX_HEADER_BYTES
                             else "its header has no end_header line")
    newline = head.find(b"\n", end + 1)
    if newline < 0:
        newline = len(head) - 1
    fmt, elements = parse(head[:newline + 1])
    body = size - (newline + 1)
    need = sum(e.count * (2 * e.values if fmt == "ascii" else e.min_bytes) for e in elements)
    if fmt == "ascii":
        need -= 1  # (no separator after the last value)
    if need > body:
        declared = ", ".join(f"{e.count:,} {e.name}" for e in elements)
        raise PlyHeaderError(f"its header declares {declared}, more than its {body:,} bytes "
                             "after the header can hold")
    if fmt == "ascii":
        _check_ascii_rows(path, newline + 1, elements)
    counts = {e.name: e.count for e in elements}
    faces = counts.get("face", 0)
    primitives, what = (faces, "faces") if faces else (counts.get("vertex", 0), "points")
    if primitives > max_primitives:
        raise PlyHeaderError(f"it declares {primitives:,} {what}, over the budget of "
                             f"{max_primitives:,}", limit=True)


def _check_ascii_rows(path: Path, start: int, elements: list[Element]) -> None:
    """An ASCII body has a line for every row its header declares, and its last row is
    whole: the library reads a body cut short as if it were not, making up the missing faces
    from what it last read (a survey of damaged files, 2026-12-06: a file cut at 90 % of its
    bytes came out "converted" with 355 copies of one face)."""
    lines = 0
    last = b""
    with path.open("rb") as f:
        f.seek(start)
        while chunk := f.read(1 << 24):
            lines += chunk.count(b"\n")
            last = (last + chunk)[-4096:]
    if last and not last.endswith(b"\n"):
        lines += 1  # (the last line, with no line break after it)
    rows = sum(e.count for e in elements)
    declared = ", ".join(f"{e.count:,} {e.name}" for e in elements)
    if lines < rows:
        raise PlyHeaderError(f"its header declares {declared} ({rows:,} lines in ASCII), but "
                             f"it has {lines:,} lines after the header: it is cut short or damaged")
    final = next((e for e in reversed(elements) if e.count), None)
    text = last.rstrip().rsplit(b"\n", 1)[-1].split()
    if final is None or final.lists > 1 or (final.lists and final.values > 1):
        return  # (rows of a list among other values: not checked)
    want = final.values if not final.lists else (
        1 + int(text[0]) if text and text[0].isdigit() else -1)
    if len(text) != want:
        shown = b" ".join(text)[:60].decode("ascii", errors="replace")
        raise PlyHeaderError(f"its last line ({shown!r}) is not a whole {final.name} row: it "
                             "is cut short or damaged")
