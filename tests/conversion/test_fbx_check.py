"""Binary FBX files checked before the Open Asset Import Library reads them (``host.fbx_check``).

The files are written here from the format's description (records of end offset, property count,
property-list length and name; typed properties; nested records closed by a null record), small
enough to read byte by byte: a triangle's mesh that the library converts, then the same file
with one thing wrong.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from farview.host import fbx_check
from farview.host.convert import Budgets, ConversionError, convert_file
from farview.host.fbx_check import FbxError, array_budget, check, check_bytes
from farview.host.gltf import load_model


class I64(int):
    """An ``L`` property (an object id)."""


@dataclass
class Array:
    kind: str
    values: list[float] | list[int]
    encoding: int = 1
    count: int | None = None
    """The element count written (``len(values)`` when None)."""
    stored: bytes | None = None
    """The bytes written instead of the values' (compressed when ``encoding`` is 1)."""

    def encode(self) -> bytes:
        fmt = {"d": "d", "f": "f", "i": "i", "l": "q"}[self.kind]
        raw = struct.pack(f"<{len(self.values)}{fmt}", *self.values)
        if self.stored is not None:
            raw = self.stored
        payload = zlib.compress(raw) if self.encoding == 1 else raw
        count = len(self.values) if self.count is None else self.count
        return (self.kind.encode() + struct.pack("<III", count, self.encoding, len(payload))
                + payload)


@dataclass
class Rec:
    name: str
    props: tuple[object, ...] = ()
    children: list[Rec] = field(default_factory=list)


def _prop(v: object) -> bytes:
    if isinstance(v, Array):
        return v.encode()
    if isinstance(v, bytes):  # a raw property, written as given
        return v
    if isinstance(v, str):
        return b"S" + struct.pack("<I", len(v.encode())) + v.encode()
    if isinstance(v, I64):
        return b"L" + struct.pack("<q", v)
    if isinstance(v, int):
        return b"I" + struct.pack("<i", v)
    raise TypeError(v)


def _record(rec: Rec, at: int, wide: bool) -> bytes:
    head = struct.Struct("<QQQB" if wide else "<IIIB")
    props = b"".join(_prop(p) for p in rec.props)
    body_at = at + head.size + len(rec.name) + len(props)
    nested = b""
    for child in rec.children:
        nested += _record(child, body_at + len(nested), wide)
    if rec.children:
        nested += bytes(head.size)
    end = body_at + len(nested)
    return head.pack(end, len(rec.props), len(props), len(rec.name)) + rec.name.encode() + \
        props + nested


def write_fbx(records: list[Rec], version: int = 7400) -> bytes:
    out = b"Kaydara FBX Binary  \x00\x1a\x00" + struct.pack("<I", version)
    for rec in records:
        out += _record(rec, len(out), version >= 7500)
    return out + bytes(25 if version >= 7500 else 13)


def triangle(vertices: Array | None = None) -> list[Rec]:
    """One triangle (a mesh named "tri" in a model named "part"), as the FBX SDK lays it out."""
    vertices = vertices or Array("d", [0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0])
    return [
        Rec("FBXHeaderExtension", (), [Rec("FBXHeaderVersion", (1003,)),
                                       Rec("FBXVersion", (7400,))]),
        Rec("GlobalSettings", (), [Rec("Version", (1000,))]),
        Rec("Objects", (), [
            Rec("Geometry", (I64(100), "tri\x00\x01Geometry", "Mesh"), [
                Rec("Vertices", (vertices,)),
                Rec("PolygonVertexIndex", (Array("i", [0, 1, ~2]),)),
            ]),
            Rec("Model", (I64(200), "part\x00\x01Model", "Mesh"), [Rec("Version", (232,))]),
        ]),
        Rec("Connections", (), [Rec("C", ("OO", I64(100), I64(200))),
                                Rec("C", ("OO", I64(200), I64(0)))]),
    ]


def vertices_at(data: bytes) -> int:
    """The offset of the Vertices record in a file written by :func:`write_fbx`."""
    return data.index(b"Vertices") - (25 if data[23:27] == struct.pack("<I", 7500) else 13)


@pytest.mark.parametrize("version", [7400, 7500])
def test_a_well_formed_binary_fbx_passes_and_converts(tmp_path: Path, version: int) -> None:
    data = write_fbx(triangle(), version)
    assert check_bytes(data, 1 << 20) == 9 * 8 + 3 * 4  # the arrays' decoded bytes
    src = tmp_path / "tri.fbx"
    src.write_bytes(data)
    result = convert_file(src, tmp_path / "tri.glb")
    assert result.triangles == 1
    model = load_model(tmp_path / "tri.glb")
    assert "part" in [n.name for n in model.nodes]
    box = model.meshes[0].primitives[0].positions
    assert box.min(axis=0).tolist() == [0.0, 0.0, 0.0] and box.max(axis=0).tolist() == [
        2.0, 3.0, 0.0]


def test_files_that_are_not_binary_fbx_pass_untouched(tmp_path: Path) -> None:
    ascii_fbx = tmp_path / "a.fbx"
    ascii_fbx.write_bytes(b"; FBX 7.4.0 project file\nFBXHeaderExtension:  {\n}\n")
    assert check(ascii_fbx, 0) == 0
    empty = tmp_path / "e.fbx"
    empty.write_bytes(b"")
    assert check(empty, 0) == 0
    assert check_bytes(b"\x00 not fbx " * 50, 0) == 0


def _with(data: bytes, at: int, new: bytes) -> bytes:
    return data[:at] + new + data[at + len(new):]


def _malformed() -> list[tuple[str, bytes, str]]:
    good = write_fbx(triangle())
    v = vertices_at(good)
    end = struct.unpack_from("<I", good, v)[0]
    objects_end = struct.unpack_from("<I", good, good.index(b"Objects") - 13)[0]
    return [
        ("end past the file", _with(good, v, struct.pack("<I", len(good) + 10)),
         f"record Objects/Geometry/Vertices at byte {v:,}: its end offset"),
        ("end backwards", _with(good, v, struct.pack("<I", v - 1)), "its end offset"),
        ("property list too long", _with(good, v + 8, struct.pack("<I", end - v)),
         "bytes of properties run past its end"),
        ("properties fewer than counted", _with(good, v + 4, struct.pack("<I", 2)),
         "fewer properties than it declares"),
        ("unknown type", _with(good, v + 13 + len("Vertices"), b"Z"),
         "a property has the unknown type 'Z'"),
        ("unknown encoding", _with(good, v + 13 + len("Vertices") + 5, struct.pack("<I", 2)),
         "an array has encoding 2"),
        ("no null record", _with(good, objects_end - 1, b"\x01"),
         "record Objects at byte"),
        ("cut short", good[:v + 30], "at byte"),
        ("truncated header", good[:25], "ends inside the binary FBX header"),
        # (Assimp's test model transparentTest.fbx: its zero bytes became spaces)
        ("header sent as text", good[:20] + b" \x1a " + good[23:25] + b"  " + good[27:],
         "its binary FBX header is damaged: it names version 538,975,464"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_malformed_structures_are_named(case: int) -> None:
    name, data, says = _malformed()[case]
    with pytest.raises(FbxError) as err:
        check_bytes(data, 1 << 20)
    assert says in err.value.message and not err.value.limit, (name, err.value.message)


def test_a_garbled_record_name_is_shown_printable() -> None:
    good = write_fbx(triangle())
    v = vertices_at(good)
    bad = _with(_with(good, v + 13, b"\n\x01"), v, struct.pack("<I", len(good) + 10))
    with pytest.raises(FbxError) as err:
        check_bytes(bad, 1 << 20)
    assert "record Objects/Geometry/??rtices at byte" in err.value.message
    assert err.value.message.isprintable()


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    rec = Rec("leaf", (1,))
    for _ in range(fbx_check.MAX_DEPTH + 2):
        rec = Rec("n", (), [rec])
    with pytest.raises(FbxError, match=f"nested more than {fbx_check.MAX_DEPTH} deep"):
        check_bytes(write_fbx([rec]), 1 << 20)
    shallow = Rec("leaf", (1,))
    for _ in range(10):
        shallow = Rec("n", (), [shallow])
    assert check_bytes(write_fbx([shallow]), 1 << 20) == 0


def test_arrays_must_fit_their_stored_bytes() -> None:
    plain = Array("d", [0.0] * 9, encoding=0, count=3, stored=b"A" * 1024)
    with pytest.raises(FbxError, match=r"an array of 3 'd' values \(24 bytes\) stores 1,024 bytes"):
        check_bytes(write_fbx(triangle(plain)), 1 << 30)
    # a compressed array can expand at most 1032 times (deflate's limit)
    data = write_fbx(triangle(Array("d", [0.0] * 9, count=536_870_910)))
    with pytest.raises(FbxError, match=r"Vertices at byte [\d,]+: an array declares 536,870,910 "
                                       r"'d' values \(4,294,967,280 bytes\), more than its \d+ "
                                       "compressed bytes can hold") as err:
        check_bytes(data, 1 << 40)
    assert not err.value.limit
    # zeros really compress about 1000 to 1: such an array passes the ratio, the budget counts it
    zeros = Array("d", [], count=3 * 43_690, stored=bytes(8 * 3 * 43_690))
    data = write_fbx(triangle(zeros))
    assert check_bytes(data, 1 << 30) == 8 * 3 * 43_690 + 12
    with pytest.raises(FbxError, match=r"its arrays declare more than 1,000,000 bytes \(at record "
                                       r"Objects/Geometry/Vertices") as err:
        check_bytes(data, 1_000_000)
    assert err.value.limit


def test_the_budget_follows_the_triangle_budget() -> None:
    assert array_budget(20_000_000) == 20_000_000 * fbx_check.BYTES_PER_TRIANGLE
    assert array_budget(10) == fbx_check.MIN_ARRAY_BUDGET


def test_the_conversion_refuses_an_array_bomb_at_once_and_leaves_nothing(tmp_path: Path) -> None:
    """A 637-byte file declaring one array of 4 GiB: the importer took 6.2 GB and 17 s reading
    it (measured by hand)."""
    src = tmp_path / "bomb.fbx"
    src.write_bytes(write_fbx(triangle(Array("d", [0.0] * 9, count=536_870_910))))
    with pytest.raises(ConversionError, match=r"bomb\.fbx: record Objects/Geometry/Vertices at "
                                              r"byte [\d,]+: an array declares 536,870,910 'd' "
                                              r"values .*; export it again") as err:
        convert_file(src, tmp_path / "bomb.glb")
    assert err.value.code == "InvalidInput"
    # 72 MiB of zeros (compressed about 1000 to 1), over the smallest budget
    zeros = Array("d", [], count=9 << 20, stored=bytes(72 << 20))
    (tmp_path / "big.fbx").write_bytes(write_fbx(triangle(zeros)))
    with pytest.raises(ConversionError, match=r"big\.fbx: its arrays declare more than "
                                              r"67,108,864 bytes") as err:
        convert_file(tmp_path / "big.fbx", tmp_path / "big.glb", Budgets(max_triangles=10))
    assert err.value.code == "LimitExceeded"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.fbx", "bomb.fbx"]


def test_mutated_files_end_in_a_count_or_an_fbx_error() -> None:
    """2,000 copies of a well-formed file with 1-8 bytes changed, words overwritten, bytes
    deleted or the end cut (a fixed seed): the walk never fails any other way (a struct error,
    an index past the end). By hand, 30,000 such files: the same."""
    import random

    seeds = [write_fbx(triangle()), write_fbx(triangle(), 7500)]
    rng = random.Random(5)
    passed = 0
    for _ in range(2000):
        d = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 8)):
            if len(d) < 2:
                break
            at, r = rng.randrange(len(d)), rng.random()
            if r < 0.5:
                d[at] = rng.randrange(256)
            elif r < 0.8:
                d[at:at + 4] = rng.choice([0, 1, 0xFFFFFFFF, 0x7FFFFFFF, 1 << 20]).to_bytes(4, "little")
            elif r < 0.9:
                del d[at:at + rng.randint(1, 40)]
            else:
                d = d[:at]
        try:
            assert check_bytes(bytes(d), 1 << 30) >= 0
            passed += 1
        except FbxError as e:
            assert e.message
    assert 0 < passed < 2000  # some pass, some are refused
