"""PLY headers checked before the Open Asset Import Library reads a file (``host.ply_check``)."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import pytest

from farview.host.convert import ConversionError, convert_file
from farview.host.ply_check import PlyHeaderError, check, parse

HEADER = ("ply\nformat {fmt} 1.0\ncomment made by hand\nelement vertex {v}\nproperty float x\n"
          "property float y\nproperty float z\nelement face {f}\n"
          "property list uchar int vertex_indices\nend_header\n")
ASCII_BODY = "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n"


def write(path: Path, header: str, body: bytes) -> Path:
    path.write_bytes(header.encode() + body)
    return path


def test_well_formed_files_pass_in_ascii_and_binary(tmp_path: Path) -> None:
    check(write(tmp_path / "a.ply", HEADER.format(fmt="ascii", v=3, f=1), ASCII_BODY.encode()), 10)
    body = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0) + struct.pack("<B3i", 3, 0, 1, 2)
    check(write(tmp_path / "b.ply", HEADER.format(fmt="binary_little_endian", v=3, f=1), body), 10)
    fmt, elements = parse(HEADER.format(fmt="ascii", v=3, f=1).replace("\n", "\r\n").encode())
    assert fmt == "ascii" and [(e.name, e.count, e.values) for e in elements] == [
        ("vertex", 3, 3), ("face", 1, 1)]


@pytest.mark.parametrize(("header", "says"), [
    ("plx\nformat ascii 1.0\nend_header\n", "does not start with the line 'ply'"),
    ("ply\nformat ascii 1.0\nelement vertex 3\nproperty float z-element face 60\nend_header\n",
     "line 4 of its header ('property float z-element face 60') is not PLY's"),
    ("ply\nformat ascii 1.0\nelement vertex -3\nend_header\n", "line 3"),
    ("ply\nformat ascii 1.0\nproperty float x\nend_header\n", "line 3"),
    ("ply\nformat ascii 1.0\nelement face 1\nproperty list float int v\nend_header\n", "line 4"),
    ("ply\nformat ebcdic 1.0\nend_header\n", "line 2"),
    ("ply\nelement vertex 0\nend_header\n", "names no format"),
    ("ply\nformat ascii 1.0\nelement vertex 0\n", "no end_header"),
])
def test_malformed_headers_are_named(tmp_path: Path, header: str, says: str) -> None:
    with pytest.raises(PlyHeaderError) as err:
        check(write(tmp_path / "m.ply", header, b""), 10)
    assert says in err.value.message and not err.value.limit


def test_lines_of_other_words_are_skipped_as_the_library_skips_them(tmp_path: Path) -> None:
    """Blender 2.47 wrote a comment without the word "comment" (the Open Asset Import
    Library's test model Wuson.ply); the library reads such a file, and so does the converter."""
    header = HEADER.format(fmt="ascii", v=3, f=1).replace(
        "comment made by hand", "Created by Blender3D 247 - www.blender.org, source file: ")
    src = write(tmp_path / "blender.ply", header, ASCII_BODY.encode())
    check(src, 10)
    assert convert_file(src, tmp_path / "blender.glb").triangles == 1


def test_counts_the_file_cannot_hold_or_over_the_budget_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PlyHeaderError, match=r"declares 3 vertex, 1,000,000 face, more than its "
                                             r"26 bytes") as err:
        check(write(tmp_path / "a.ply", HEADER.format(fmt="ascii", v=3, f=10**6),
                    ASCII_BODY.encode()), 10**9)
    assert not err.value.limit
    short = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)  # no room for the face's count
    with pytest.raises(PlyHeaderError, match="more than its 36 bytes"):
        check(write(tmp_path / "b.ply", HEADER.format(fmt="binary_big_endian", v=3, f=1), short),
              10)
    with pytest.raises(PlyHeaderError, match="1 faces, over the budget of 0") as err:
        check(write(tmp_path / "c.ply", HEADER.format(fmt="ascii", v=3, f=1), ASCII_BODY.encode()),
              0)
    assert err.value.limit
    points = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n"
    with pytest.raises(PlyHeaderError, match="3 points, over the budget of 2"):
        check(write(tmp_path / "d.ply", points, b"1\n2\n3\n"), 2)


def test_the_conversion_refuses_a_header_bomb_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    """A 2.5 KB file whose face element ran into the property line before it: the importer
    took 14 GB in 20 s reading it."""
    from benchmarks.bench_scale import sphere

    pos, _, idx = sphere(6)
    body = "".join(f"{x} {y} {z}\n" for x, y, z in pos.tolist()) + "".join(
        f"3 {a} {b} {c}\n" for a, b, c in idx.reshape(-1, 3).tolist())
    header = HEADER.format(fmt="ascii", v=len(pos), f=len(idx) // 3).replace(
        "property float z\nelement", "property float z-element")
    src = write(tmp_path / "bomb.ply", header.replace("comment made by hand\n", ""),
                body.encode())
    t0 = time.monotonic()
    with pytest.raises(ConversionError, match=r"bomb\.ply: line 6 of its header") as err:
        convert_file(src, tmp_path / "bomb.glb")
    assert err.value.code == "InvalidInput" and time.monotonic() - t0 < 30
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.ply"]


@pytest.mark.parametrize(("body", "says"), [
    ("0.5 0.5 0.5\n1.5 0.5 0.5\n0.5 1.5 0.5\n", "(4 lines in ASCII), but it has 3 lines after the header"),
    ("0.5 0.5 0.5\n1.5 0.5 0.5\n0.5 1.5 0.5\n3 0 1", "its last line ('3 0 1') is not a whole face row"),
    ("0.5 0.5 0.5\n1.5 0.5 0.5\n0.5 1.5 0.5\n3 0 1 \n", "its last line ('3 0 1') is not a whole face row"),
])
def test_an_ascii_body_cut_short_is_refused(tmp_path: Path, body: str, says: str) -> None:
    """The library read an ASCII body cut short as whole, making up the missing faces from the
    last one it read (a file cut at 90 % came out with 355 copies of one face)."""
    with pytest.raises(PlyHeaderError) as err:
        check(write(tmp_path / "cut.ply", HEADER.format(fmt="ascii", v=3, f=1), body.encode()), 10)
    assert says in err.value.message and "cut short or damaged" in err.value.message
    src = write(tmp_path / "whole.ply", HEADER.format(fmt="ascii", v=3, f=1),
                b"0.5 0.5 0.5\n1.5 0.5 0.5\n0.5 1.5 0.5\n3 0 1 2")  # no line break at the end: whole
    check(src, 10)
    assert convert_file(src, tmp_path / "whole.glb").triangles == 1
    vertices = HEADER.format(fmt="ascii", v=3, f=0)  # the last row checked is the vertices'
    check(write(tmp_path / "points.ply", vertices, b"0.5 0.5 0.5\n1.5 0.5 0.5\n0.5 1.5 0.5\n"), 10)
    with pytest.raises(PlyHeaderError, match=r"its last line \('0\.5 1\.5'\) is not a whole vertex row"):
        check(write(tmp_path / "points.ply", vertices, b"0.5 0.5 0.5\n1.5 0.5 0.5\n0.5 1.5\n"), 10)
