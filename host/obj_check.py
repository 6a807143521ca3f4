"""An OBJ file looked over before and after the Open Asset Import Library reads it.

OBJ has no header and no end marker: a file cut short reads as a smaller model. A throwaway
survey of damaged files (2026-12-06) had the library convert an OBJ cut at half its bytes as
"succeeded", with one of its two objects (vertices, no faces) left out, and one whose ``.mtl``
was cut, with both materials the default grey. :func:`scan` reads the file once (16 MiB at a
time, searching bytes, no line-by-line Python) for what shows such damage:

- its last line, when the file does not end with a line break: an element cut in the middle
  (``v 1.0 2.``, ``f 1/1 2/``) or vertex data after the last face (an exporter writes a
  mesh's faces after its vertices) says the file was cut short;
- the material names its ``usemtl`` lines use and the libraries its ``mtllib`` lines name:
  a name no library defines is drawn grey.

A file cut exactly at a line break, after a face, cannot be told from a whole one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 24
_NUMBER = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_REF = rb"-?\d+(?:/-?\d+)?(?:/-?\d+)?|-?\d+//-?\d+"
_COMPLETE = {  # an element's whole line: its word and what must follow it
    b"v": re.compile(rb"(?:\s+" + _NUMBER + rb"){3,7}"),
    b"vn": re.compile(rb"(?:\s+" + _NUMBER + rb"){3}"),
    b"vt": re.compile(rb"(?:\s+" + _NUMBER + rb"){1,3}"),
    b"f": re.compile(rb"(?:\s+(?:" + _REF + rb")){3,}"),
}
_VERTEX_DATA = (b"v", b"vn", b"vt")


@dataclass
class ObjScan:
    cut: str | None = None
    """Why the file looks cut short (None: it does not)."""
    materials_used: set[str] = field(default_factory=set)
    libraries: list[str] = field(default_factory=list)
    """What each ``mtllib`` line names (the rest of its line)."""
    faces: bool = False


def undefined(used: set[str], libraries: list[Path]) -> list[str]:
    """The names in ``used`` that no ``newmtl`` line of ``libraries`` (``.mtl`` files)
    defines (the importer makes a grey material of each, saying nothing). A first word that
    matches counts: the importer reads a name to its first space in some places."""
    found: list[str] = []
    for path in libraries:
        with path.open("rb") as f:
            _names(f.read(), b"newmtl", found)
    defined = set(found) | {d.split()[0] for d in found}
    return sorted(u for u in used if u not in defined and u.split()[0] not in defined)


def _names(data: bytes, word: bytes, found: list[str]) -> None:
    """The rest of each line of ``data`` that starts with ``word`` (and a space or tab)."""
    start = 0
    while (at := data.find(word, start)) >= 0:
        start = at + len(word)
        if (at and data[at - 1] not in b"\r\n") or data[start:start + 1] not in (b" ", b"\t"):
            continue
        end = data.find(b"\n", start)
        rest = data[start:end if end >= 0 else len(data)].split(b"#", 1)[0].strip()
        if rest:
            found.append(rest.decode("utf-8", errors="replace"))


def scan(path: Path) -> ObjScan:
    """Read ``path`` (an OBJ) once; see the module's description."""
    out = ObjScan()
    used: list[str] = []
    carry = b""
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1  # whole lines now, the rest with the next chunk
            lines, carry = data[:cut], data[cut:]
            _names(lines, b"usemtl", used)
            _names(lines, b"mtllib", out.libraries)
            out.faces = out.faces or lines.startswith(b"f ") or b"\nf " in lines \
                or b"\nf\t" in lines
    if carry.strip():  # the last line has no line break after it
        word = carry.split(None, 1)[0]
        _names(carry, b"usemtl", used)
        _names(carry, b"mtllib", out.libraries)
        out.faces = out.faces or word == b"f"
        shown = carry.strip()[:60].decode("utf-8", errors="replace")
        rule = _COMPLETE.get(word)
        if rule is not None and not rule.fullmatch(carry.split(b"#", 1)[0].rstrip()[len(word):]):
            out.cut = f"its last line ({shown!r}) ends in the middle of an element"
        elif word in _VERTEX_DATA and out.faces:
            out.cut = (f"it ends with vertex data ({shown!r}) after its last face, with no line "
                       "break")
    out.materials_used = set(used)
    return out
