"""The glTF loader's JSON: orjson's behaviour it relies on (pinned in pyproject.toml), the
fallback to Python's parser, and the vectorised nesting scan against the general one."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from farview.host import gltf
from tests.host.conftest import FOREIGN, SAMPLE, SHARED_MODELS


def _glb_json(path: Path) -> bytes:
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    return data[20:20 + length]


def test_orjson_behaviour_the_loader_relies_on() -> None:
    # Refusals are ValueErrors (the loader then asks Python's parser, which decides)
    assert issubclass(orjson.JSONDecodeError, ValueError)
    for refused in (b'{"a": "\\ud800"}', b'{"a": 1e400}', b"{", b'{"a": NaN}'):
        with pytest.raises(ValueError):
            orjson.loads(refused)
    # Integers within 64 bits stay exact ints; past them they are floats (as _json_int makes
    # them), which every count, offset and index check refuses
    doc = orjson.loads(b'{"a": 9223372036854775807, "b": 18446744073709551615, '
                       b'"c": 123456789012345678901234567890, "d": -0, "e": 5}')
    assert doc["a"] == 2**63 - 1 and type(doc["a"]) is int
    assert type(doc["b"]) is int
    assert type(doc["c"]) is float and doc["c"] == pytest.approx(1.2345678901234568e29)
    assert type(doc["d"]) is int and type(doc["e"]) is int
    # Duplicate keys: the last one wins, as in Python's parser
    assert orjson.loads(b'{"a": 1, "a": 2}') == {"a": 2}


@pytest.mark.parametrize("name", FOREIGN)
def test_the_fast_parser_reads_real_files_as_pythons_does(name: str) -> None:
    raw = _glb_json(SHARED_MODELS / f"{name}.glb")
    assert gltf._parse_json(raw) == json.loads(raw)


def test_json_the_fast_parser_refuses_is_read_by_pythons() -> None:
    # A lone surrogate in a name is valid JSON; orjson refuses it, Python's parser takes it
    raw = _glb_json(SAMPLE).decode()
    raw = raw.replace('"generator":"farview', '"generator":"\\ud800 farview', 1)
    assert '"generator":"\\ud800 farview' in raw
    assert gltf._parse_json(raw.encode())["asset"]["generator"].startswith("\ud800")


_json_text = st.recursive(
    st.one_of(st.integers(-5, 5), st.text(alphabet='ab[]{}"\\ ', max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(alphabet='k[]{"\\', max_size=3), inner,
                                            max_size=3)),
    max_leaves=12)


def _depth(v: object) -> int:
    if isinstance(v, list):
        return 1 + max(map(_depth, v), default=0)
    if isinstance(v, dict):
        return 1 + max(map(_depth, v.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(_json_text)
def test_the_nesting_scans_agree(value: object) -> None:
    raw = json.dumps({"extras": value}).encode()
    assert gltf._json_depth(raw) == 1 + _depth(value)
    general = gltf._bracket_depth(gltf.np.frombuffer(
        gltf._JSON_STRING.sub(b"", raw).translate(None, gltf._NOT_BRACKETS), dtype=gltf.np.uint8))
    assert gltf._json_depth(raw) == general
    unescaped = raw.replace(b"\\\\", b"").replace(b'\\"', b"")  # no backslashes left
    if b"\\" not in unescaped:
        assert gltf._json_depth_unescaped(unescaped) == gltf._bracket_depth(gltf.np.frombuffer(
            gltf._JSON_STRING.sub(b"", unescaped).translate(None, gltf._NOT_BRACKETS),
            dtype=gltf.np.uint8))
