"""ARR's material override file for conversions: ``<modelName>.MaterialOverrides.json`` beside
the input (or the file a settings file's ``material-override`` names, in the input's folder).

A JSON array of entries, each naming a material (``name``; ``nameMatching`` ``exact``, the
default, or ``regex``: the whole name must match, Python's ``re`` syntax, which agrees with
JavaScript's for ordinary patterns, run by the pinned ``regex`` package with a time limit
(:data:`REGEX_TIMEOUT_S`): with Python's ``re``, ``(a+)+$`` on a name of 34 a's and a ``!``
had held the converter at full CPU with no end; ``regex`` matches that one at once and stops
those it cannot, such as ``(a|aa)+$``, at the limit) and what to change in it, with ARR's schema's keys:
``unlit``, ``albedoColor`` (``{"r", "g", "b"[, "a"]}``, or ``{"a"}`` for the alpha alone: the
base colour factor), ``roughness``, ``metalness``, ``transparent`` (alpha blending),
``alphaClipEnabled`` and ``alphaClipThreshold`` (glTF's ``MASK`` and cutoff),
``useVertexColor`` (false: the vertex colours of the parts with the material are dropped),
``isDoubleSided`` and ``ignoreTextureMaps``. A material takes one entry: an exact one for its
name, else the first ``regex`` entry that matches it. Keys the schema lacks, values of the
wrong kind and patterns that do not compile fail the conversion; numbers outside 0..1 (colour
components, roughness, metalness, the clip threshold) are taken to the nearest end with a
warning (glTF allows no others).

The file, as the settings file, must be a regular file in the input's folder: a name that
leaves it (``..``, an absolute path, with either slash) or a link that leads out of it is
refused, and so is a device or a pipe (``/dev/zero`` had been read until memory ran out).

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
import os
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import regex

from farview.host.gltf import Material

SUFFIX = ".MaterialOverrides.json"
MAX_FILE_BYTES = 4 << 20
MAX_ENTRIES = 10_000
REGEX_TIMEOUT_S = 0.25
"""How long one ``regex`` entry may take to match one material's name."""
MAX_SHOWN = 60
"""Characters of a name or pattern a message shows."""

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
    """The JSON in the small regular file ``path``; raises ``error`` saying what is wrong."""
    try:
        # (non-blocking: opening a pipe for reading waits for a writer)
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise error(f"{path.name} is not a regular file")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise error(f"{path.name} is over {limit:,} bytes")
        return json.loads(data)
    except OSError as e:
        raise error(f"cannot read {path.name}: {e.strerror}") from None
    except (ValueError, RecursionError) as e:
        if isinstance(e, InputFileError):
            raise
        raise error(f"{path.name} is not valid JSON ({str(e)[:120]})") from None


@dataclass(frozen=True)
class Entry:
    name: str
    pattern: regex.Pattern[str] | None
    """Compiled when ``nameMatching`` is ``regex``."""
    changes: dict[str, Any] = dataclasses.field(compare=False, hash=False)
    """The entry's keys besides ``name`` and ``nameMatching``."""


@dataclass(frozen=True)
class Overrides:
    entries: tuple[Entry, ...]
    file: str
    warnings: tuple[str, ...] = ()
    """What was taken other than as written (a number outside 0..1)."""

    def entry_for(self, material_name: str) -> Entry | None:
        """Raises :class:`OverrideError` for a pattern that takes over
        :data:`REGEX_TIMEOUT_S` on the name."""
        for e in self.entries:
            if e.pattern is None and e.name == material_name:
                return e
        for i, e in enumerate(self.entries):
            if e.pattern is not None and self._matches(i, e, material_name):
                return e
        return None

    def unused(self, material_names: set[str]) -> list[Entry]:
        """The entries that name no material of ``material_names`` (exactly, or by their
        pattern)."""
        return [e for i, e in enumerate(self.entries)
                if (e.name not in material_names if e.pattern is None
                    else not any(self._matches(i, e, name) for name in material_names))]

    def _matches(self, index: int, entry: Entry, material_name: str) -> bool:
        assert entry.pattern is not None
        try:
            return entry.pattern.fullmatch(material_name, timeout=REGEX_TIMEOUT_S) is not None
        except TimeoutError:
            raise OverrideError(
                f"{self.file} entry {index}: the pattern {shown(entry.name)!r} took over "
                f"{REGEX_TIMEOUT_S} s on the material {shown(material_name)!r} (it "
                "backtracks without end); write it without nested repetition, such as "
                "(a+)+") from None

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
            changes["roughness"] = c["roughness"]
        if "metalness" in c:
            changes["metallic"] = c["metalness"]
        if "transparent" in c:
            changes["alpha_mode"] = "BLEND" if c["transparent"] else "OPAQUE"
        if c.get("alphaClipEnabled"):
            changes["alpha_mode"] = "MASK"
        elif c.get("alphaClipEnabled") is False and m.alpha_mode == "MASK":
            changes["alpha_mode"] = "OPAQUE"
        if "alphaClipThreshold" in c:
            changes["alpha_cutoff"] = c["alphaClipThreshold"]
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
        cleaned = named.replace("\\", "/")  # (before the checks: "\\tmp\\x" is absolute too)
        parts = PurePosixPath(cleaned).parts
        if PurePosixPath(cleaned).is_absolute() or ".." in parts or "\0" in named:
            raise OverrideError(f"material-override {shown(named)!r} must name a file in the "
                                "input's folder")
        path = src.parent.joinpath(*parts)
        try:
            found = path.is_file()
        except OSError as e:  # (a name too long, say)
            raise OverrideError(f"material-override {shown(named)!r} cannot be read: "
                                f"{e.strerror}") from None
        if not found:
            raise OverrideError(f"material-override names {shown(named)}, which is not "
                                f"beside {src.name}")
        return inside_folder(src, path, OverrideError)
    found_beside = beside(src, SUFFIX)
    return None if found_beside is None else inside_folder(src, found_beside, OverrideError)


def beside(src: Path, suffix: str) -> Path | None:
    """``<stem><suffix>`` beside the input ``src`` when it is a file there (None when not,
    or when the name is too long to be one)."""
    path = src.with_name(src.stem + suffix)
    try:
        return path if path.is_file() else None
    except OSError:
        return None


def inside_folder(src: Path, path: Path, error: type[InputFileError]) -> Path:
    """``path``, refused when it leads out of the input's folder (a link)."""
    if not path.resolve().is_relative_to(src.parent.resolve()):
        raise error(f"{path.name} leads out of the folder of {src.name} through a link; put "
                    "the file itself in that folder")
    return path


def shown(text: str) -> str:
    """``text`` cut to :data:`MAX_SHOWN` characters, for a message."""
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def read(path: Path) -> Overrides:
    return parse(read_json(path, MAX_FILE_BYTES, OverrideError), path.name)


def parse(doc: Any, name: str = "the material override file") -> Overrides:
    if not isinstance(doc, list):
        raise OverrideError(f"{name} must hold a JSON array of material entries")
    if len(doc) > MAX_ENTRIES:
        raise OverrideError(f"{name} has over {MAX_ENTRIES:,} entries")
    warnings: list[str] = []
    entries = tuple(_entry(e, f"{name} entry {i}", warnings) for i, e in enumerate(doc))
    return Overrides(entries, name, tuple(warnings))


def number(value: Any, where: str, error: type[InputFileError]) -> float:
    """``value`` (JSON) as a finite float; raises ``error`` saying ``where`` it was not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise error(f"{where} must be a number")
    try:
        out = float(value)
    except OverflowError:  # (an integer of hundreds of digits)
        raise error(f"{where} must be a number of ordinary size") from None
    if not math.isfinite(out):
        raise error(f"{where} must be a number")
    return out


def _unit(value: Any, where: str, warnings: list[str]) -> float:
    """A number from 0 to 1: one outside is taken to the nearest end, with a warning."""
    out = number(value, where, OverrideError)
    if not 0.0 <= out <= 1.0:
        kept = min(max(out, 0.0), 1.0)
        warnings.append(f"{where} {out:g} is outside 0..1: taken as {kept:g}")
        return kept
    return out


def _entry(e: Any, where: str, warnings: list[str]) -> Entry:
    if not isinstance(e, dict):
        raise OverrideError(f"{where} must be an object")
    unknown = [k for k in e if k not in _KEYS]
    if unknown:
        raise OverrideError(f"{where}: unknown key {str(unknown[0])!r}; ARR's are "
                            f"{', '.join(_KEYS)}")
    name = e.get("name")
    if not isinstance(name, str):
        raise OverrideError(f"{where} needs a name (a string)")
    where = f"{where} ({shown(name)!r})"
    matching = e.get("nameMatching", "exact")
    if matching not in ("exact", "regex"):
        raise OverrideError(f"{where}: nameMatching must be exact or regex")
    pattern = None
    if matching == "regex":
        try:
            pattern = regex.compile(name)
        except (regex.error, ValueError, OverflowError) as err:
            raise OverrideError(f"{where}: the name is not a regular expression "
                                f"({str(err)[:MAX_SHOWN]})") from None
    changes: dict[str, Any] = {}
    for key in ("unlit", "transparent", "alphaClipEnabled", "useVertexColor", "isDoubleSided"):
        if key in e:
            if not isinstance(e[key], bool):
                raise OverrideError(f"{where}: {key} must be true or false")
            changes[key] = e[key]
    for key in ("roughness", "metalness", "alphaClipThreshold"):
        if key in e:
            changes[key] = _unit(e[key], f"{where}: {key}", warnings)
    if "albedoColor" in e:
        colour = e["albedoColor"]
        if not isinstance(colour, dict) or not colour or any(k not in "rgba" or len(k) != 1
                                                            for k in colour):
            raise OverrideError(f"{where}: albedoColor must be {{r, g, b[, a]}} or {{a}}")
        rgb = [k for k in "rgb" if k in colour]
        if (rgb and len(rgb) != 3) or (not rgb and "a" not in colour):
            raise OverrideError(f"{where}: albedoColor needs r, g and b, or a alone")
        changes["albedoColor"] = {k: _unit(v, f"{where}: albedoColor.{k}", warnings)
                                  for k, v in colour.items()}
    if "ignoreTextureMaps" in e:
        maps = e["ignoreTextureMaps"]
        if not isinstance(maps, list) or any(m not in MAPS for m in maps):
            raise OverrideError(f"{where}: ignoreTextureMaps must be a list of "
                                f"{', '.join(MAPS)}")
        changes["ignoreTextureMaps"] = tuple(maps)
    return Entry(name, pattern, changes)
