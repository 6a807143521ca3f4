"""ARR's material override file for conversions: ``<modelName>.MaterialOverrides.json`` beside
the input (or the file a settings file's ``material-override`` names, in the input's folder).

A JSON array of entries, each naming a material (``name``; ``nameMatching`` ``exact``, the
default, or ``regex``: the whole name must match, Python's ``re`` syntax, which agrees with
JavaScript's for ordinary patterns) and what to change in it, with ARR's schema's keys:
``unlit``, ``albedoColor`` (``{"r", "g", "b"[, "a"]}``, or ``{"a"}`` for the alpha alone: the
base colour factor), ``roughness``, ``metalness``, ``transparent`` (alpha blending),
``alphaClipEnabled`` and ``alphaClipThreshold`` (glTF's ``MASK`` and cutoff),
``useVertexColor`` (false: the vertex colours of the parts with the material are dropped),
``isDoubleSided`` and ``ignoreTextureMaps``. A material takes one entry: an exact one for its
name, else the first ``regex`` entry that matches it. Keys the schema lacks, values of the
wrong kind and patterns that do not compile fail the conversion.

``ignoreTextureMaps``: ``AlbedoMap`` and ``DiffuseMap`` drop the base colour texture,
``EmissiveMap`` the emissive one, ``NormalMap`` and ``BumpMap`` the normal map,
``OcclusionMap`` the occlusion one, ``RoughnessMap``, ``MetalnessMap`` and
``MetallicRoughnessMap`` the metallic-roughness texture (glTF keeps both in one). farview
reads no ``OpacityMap``, ``ReflectivityMap``, ``SpecularMap``, ``ShininessMap`` or
``SpecularGlossinessMap`` (glTF's opacity is the base colour texture's alpha), so those change
nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from farview.host.gltf import Material

SUFFIX = ".MaterialOverrides.json"
MAX_FILE_BYTES = 4 << 20
MAX_ENTRIES = 10_000

_KEYS = ("name", "nameMatching", "unlit", "albedoColor", "roughness", "metalness",
         "transparent", "alphaClipEnabled", "alphaClipThreshold", "useVertexColor",
         "isDoubleSided", "ignoreTextureMaps")
MAPS = ("AlbedoMap", "EmissiveMap", "NormalMap", "OcclusionMap", "RoughnessMap",
        "MetalnessMap", "ReflectivityMap", "BumpMap", "OpacityMap", "DiffuseMap",
        "SpecularMap", "ShininessMap", "MetallicRoughnessMap", "SpecularGlossinessMap")
_DROPS = {"AlbedoMap": "base_color_texture", "DiffuseMap": "base_color_texture",
          "EmissiveMap": "emissive_texture", "NormalMap": "normal_texture",
          "BumpMap": "normal_texture", "OcclusionMap": "occlusion_texture",
          "RoughnessMap": "metallic_roughness_texture",
          "MetalnessMap": "metallic_roughness_texture",
          "MetallicRoughnessMap": "metallic_roughness_texture"}


class InputFileError(ValueError):
    """A file that comes with a conversion's input is not valid: ``message`` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class OverrideError(InputFileError):
    pass


def read_json(path: Path, limit: int, error: type[InputFileError]) -> Any:
    """The JSON in the small file ``path``; raises ``error`` saying what is wrong."""
    try:
        if path.stat().st_size > limit:
            raise error(f"{path.name} is over {limit:,} bytes")
        return json.loads(path.read_bytes())
    except OSError as e:
        raise error(f"cannot read {path.name}: {e.strerror}") from None
    except (ValueError, RecursionError) as e:
        if isinstance(e, InputFileError):
            raise
        raise error(f"{path.name} is not valid JSON ({str(e)[:120]})") from None


@dataclass(frozen=True)
class Entry:
    name: str
    pattern: re.Pattern[str] | None
    """Compiled when ``nameMatching`` is ``regex``."""
    changes: dict[str, Any] = dataclasses.field(compare=False, hash=False)
    """The entry's keys besides ``name`` and ``nameMatching``."""


@dataclass(frozen=True)
class Overrides:
    entries: tuple[Entry, ...]
    file: str

    def entry_for(self, material_name: str) -> Entry | None:
        for e in self.entries:
            if e.pattern is None and e.name == material_name:
                return e
        for e in self.entries:
            if e.pattern is not None and e.pattern.fullmatch(material_name):
                return e
        return None

    def apply(self, m: Material) -> tuple[Material, bool]:
        """``m`` with its entry's changes, and whether the material keeps its vertex colours
        (``useVertexColor``)."""
        entry = self.entry_for(m.name)
        if entry is None:
            return m, True
        c = entry.changes
        changes: dict[str, Any] = {}
        if "unlit" in c:
            changes["unlit"] = c["unlit"]
        if "albedoColor" in c:
            colour = c["albedoColor"]
            r, g, b, a = m.base_color
            if "r" in colour:
                r, g, b = colour["r"], colour["g"], colour["b"]
            changes["base_color"] = (r, g, b, colour.get("a", a))
        if "roughness" in c:
            changes["roughness"] = min(max(c["roughness"], 0.0), 1.0)
        if "metalness" in c:
            changes["metallic"] = min(max(c["metalness"], 0.0), 1.0)
        if "transparent" in c:
            changes["alpha_mode"] = "BLEND" if c["transparent"] else "OPAQUE"
        if c.get("alphaClipEnabled"):
            changes["alpha_mode"] = "MASK"
        elif c.get("alphaClipEnabled") is False and m.alpha_mode == "MASK":
            changes["alpha_mode"] = "OPAQUE"
        if "alphaClipThreshold" in c:
            changes["alpha_cutoff"] = min(max(c["alphaClipThreshold"], 0.0), 1.0)
        if "isDoubleSided" in c:
            changes["double_sided"] = c["isDoubleSided"]
        for name in c.get("ignoreTextureMaps", ()):
            if name in _DROPS:
                changes[_DROPS[name]] = None
        return dataclasses.replace(m, **changes), c.get("useVertexColor", True)


def overrides_path(src: Path, settings: dict[str, Any] | None) -> Path | None:
    """The override file for the input ``src``: the one its settings name
    (``material-override``, in the input's folder), else ``<stem>.MaterialOverrides.json``
    when there is one. Raises :class:`OverrideError` for a name that leaves the folder or a
    named file that is not there."""
    named = (settings or {}).get("material-override") or ""
    if named:
        parts = PurePosixPath(named.replace("\\", "/")).parts
        if PurePosixPath(named).is_absolute() or ".." in parts or "\0" in named:
            raise OverrideError(f"material-override {named!r} must name a file in the "
                                "input's folder")
        path = src.parent.joinpath(*parts)
        if not path.is_file():
            raise OverrideError(f"material-override names {named}, which is not beside "
                                f"{src.name}")
        return path
    path = src.with_name(src.stem + SUFFIX)
    return path if path.is_file() else None


def read(path: Path) -> Overrides:
    return parse(read_json(path, MAX_FILE_BYTES, OverrideError), path.name)


def parse(doc: Any, name: str = "the material override file") -> Overrides:
    if not isinstance(doc, list):
        raise OverrideError(f"{name} must hold a JSON array of material entries")
    if len(doc) > MAX_ENTRIES:
        raise OverrideError(f"{name} has over {MAX_ENTRIES:,} entries")
    return Overrides(tuple(_entry(e, f"{name} entry {i}") for i, e in enumerate(doc)), name)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value):
        raise OverrideError(f"{where} must be a number")
    return float(value)


def _entry(e: Any, where: str) -> Entry:
    if not isinstance(e, dict):
        raise OverrideError(f"{where} must be an object")
    unknown = [k for k in e if k not in _KEYS]
    if unknown:
        raise OverrideError(f"{where}: unknown key {str(unknown[0])!r}; ARR's are "
                            f"{', '.join(_KEYS)}")
    name = e.get("name")
    if not isinstance(name, str):
        raise OverrideError(f"{where} needs a name (a string)")
    matching = e.get("nameMatching", "exact")
    if matching not in ("exact", "regex"):
        raise OverrideError(f"{where}: nameMatching must be exact or regex")
    pattern = None
    if matching == "regex":
        try:
            pattern = re.compile(name)
        except re.error as err:
            raise OverrideError(f"{where}: name {name!r} is not a regular expression "
                                f"({err})") from None
    changes: dict[str, Any] = {}
    for key in ("unlit", "transparent", "alphaClipEnabled", "useVertexColor", "isDoubleSided"):
        if key in e:
            if not isinstance(e[key], bool):
                raise OverrideError(f"{where}: {key} must be true or false")
            changes[key] = e[key]
    for key in ("roughness", "metalness", "alphaClipThreshold"):
        if key in e:
            changes[key] = _number(e[key], f"{where}: {key}")
    if "albedoColor" in e:
        colour = e["albedoColor"]
        if not isinstance(colour, dict) or not colour or any(k not in "rgba" or len(k) != 1
                                                            for k in colour):
            raise OverrideError(f"{where}: albedoColor must be {{r, g, b[, a]}} or {{a}}")
        rgb = [k for k in "rgb" if k in colour]
        if (rgb and len(rgb) != 3) or (not rgb and "a" not in colour):
            raise OverrideError(f"{where}: albedoColor needs r, g and b, or a alone")
        changes["albedoColor"] = {k: _number(v, f"{where}: albedoColor.{k}")
                                  for k, v in colour.items()}
    if "ignoreTextureMaps" in e:
        maps = e["ignoreTextureMaps"]
        if not isinstance(maps, list) or any(m not in MAPS for m in maps):
            raise OverrideError(f"{where}: ignoreTextureMaps must be a list of "
                                f"{', '.join(MAPS)}")
        changes["ignoreTextureMaps"] = tuple(maps)
    return Entry(name, pattern, changes)
