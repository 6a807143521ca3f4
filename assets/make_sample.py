"""Generate farview's shipped sample model ``assets/sample_engine.glb`` (deterministic).

An engine-like assembly of named parts built from boxes, cylinders and tori, with a node
hierarchy (Engine → Block, CylinderBank → Cylinder_1.., Crankshaft → …), distinct
metallic-roughness materials, ≈ 0.7 m across, centred near the origin, y up.

Determinism: the unit-circle tables come from Python's ``math`` (not numpy's SIMD kernels, which
may differ by an ulp between CPUs); everything after is IEEE arithmetic on float32/float64, and the
GLB is written with a fixed JSON key order. ``tests/host/test_sample_model.py`` regenerates the file
and compares bytes.

Usage: ``python3 assets/make_sample.py [OUTPUT.glb]`` (default: next to this script).
"""

from __future__ import annotations

import json
import math
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]
U32 = npt.NDArray[np.uint32]

DEFAULT_OUTPUT = Path(__file__).with_name("sample_engine.glb")


# ---------------------------------------------------------------------------------------------
# Geometry: (positions, normals, indices) triples in a part's local space


@dataclass
class Geo:
    positions: list[F32] = field(default_factory=list)
    normals: list[F32] = field(default_factory=list)
    indices: list[U32] = field(default_factory=list)
    count: int = 0

    def add(self, p: npt.ArrayLike, n: npt.ArrayLike, i: npt.ArrayLike,
            transform: npt.NDArray[np.float64] | None = None) -> Geo:
        pa = np.asarray(p, dtype=np.float64).reshape(-1, 3)
        na = np.asarray(n, dtype=np.float64).reshape(-1, 3)
        if transform is not None:
            pa = pa @ transform[:3, :3].T + transform[:3, 3]
            na = na @ transform[:3, :3].T
        self.positions.append(pa.astype(np.float32))
        self.normals.append(na.astype(np.float32))
        self.indices.append((np.asarray(i, dtype=np.int64).reshape(-1) + self.count)
                            .astype(np.uint32))
        self.count += len(pa)
        return self

    def arrays(self) -> tuple[F32, F32, U32]:
        return (np.concatenate(self.positions), np.concatenate(self.normals),
                np.concatenate(self.indices))


def _circle(n: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    c = np.array([math.cos(2 * math.pi * k / n) for k in range(n)])
    s = np.array([math.sin(2 * math.pi * k / n) for k in range(n)])
    return c, s


def _xform(axis: str = "y", offset: tuple[float, float, float] = (0, 0, 0)
           ) -> npt.NDArray[np.float64]:
    """Map the builders' y axis onto ``axis`` and translate."""
    m = np.eye(4)
    if axis == "x":
        m[:3, :3] = [[0, 1, 0], [-1, 0, 0], [0, 0, 1]]
    elif axis == "z":
        m[:3, :3] = [[1, 0, 0], [0, 0, -1], [0, 1, 0]]
    m[:3, 3] = offset
    return m


def box(g: Geo, size: tuple[float, float, float],
        offset: tuple[float, float, float] = (0, 0, 0)) -> Geo:
    hx, hy, hz = (s / 2 for s in size)
    faces = [  # normal, u axis, v axis
        ((1, 0, 0), (0, 0, -1), (0, 1, 0)), ((-1, 0, 0), (0, 0, 1), (0, 1, 0)),
        ((0, 1, 0), (1, 0, 0), (0, 0, -1)), ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
        ((0, 0, 1), (1, 0, 0), (0, 1, 0)), ((0, 0, -1), (-1, 0, 0), (0, 1, 0)),
    ]
    half = np.array([hx, hy, hz])
    for n, u, v in faces:
        na, ua, va = np.array(n, float), np.array(u, float), np.array(v, float)
        c = na * half
        pts = [c + (su * ua + sv * va) * half for su, sv in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        g.add(pts, [na] * 4, [0, 1, 2, 0, 2, 3], _xform(offset=offset))
    return g


def cylinder(g: Geo, radius: float, height: float, seg: int, axis: str = "y",
             offset: tuple[float, float, float] = (0, 0, 0), caps: bool = True) -> Geo:
    c, s = _circle(seg)
    h = height / 2
    ring = np.stack([c * radius, np.zeros(seg), -s * radius], axis=1)
    nrm = np.stack([c, np.zeros(seg), -s], axis=1)
    k = np.arange(seg)
    k1 = (k + 1) % seg
    side_p = np.concatenate([ring + [0, -h, 0], ring + [0, h, 0]])  # noqa: RUF005 (numpy)
    side_i = np.stack([k, k1, k1 + seg, k, k1 + seg, k + seg], axis=1)
    t = _xform(axis, offset)
    g.add(side_p, np.concatenate([nrm, nrm]), side_i, t)
    if caps:
        for y, sign in ((h, 1.0), (-h, -1.0)):
            p = np.concatenate([[[0, y, 0]], ring + [0, y, 0]])  # noqa: RUF005 (numpy)
            n = np.tile([0, sign, 0], (seg + 1, 1))
            tri = np.stack([np.zeros(seg, int), k + 1, k1 + 1], axis=1)
            if sign < 0:
                tri = tri[:, [0, 2, 1]]
            g.add(p, n, tri, t)
    return g


def torus(g: Geo, major: float, minor: float, n_major: int, n_minor: int, axis: str = "y",
          offset: tuple[float, float, float] = (0, 0, 0)) -> Geo:
    cu, su = _circle(n_major)
    cv, sv = _circle(n_minor)
    # Vertex (i, j): around the ring i, around the tube j.
    nx = cu[:, None] * cv[None, :]
    ny = np.broadcast_to(sv[None, :], (n_major, n_minor))
    nz = -su[:, None] * cv[None, :]
    px = cu[:, None] * (major + minor * cv[None, :])
    pz = -su[:, None] * (major + minor * cv[None, :])
    py = minor * ny
    p = np.stack([px, py, pz], axis=2).reshape(-1, 3)
    n = np.stack([nx, ny, nz], axis=2).reshape(-1, 3)
    i = np.arange(n_major)[:, None]
    j = np.arange(n_minor)[None, :]
    i1, j1 = (i + 1) % n_major, (j + 1) % n_minor
    a, b = i * n_minor + j, i1 * n_minor + j
    c, d = i1 * n_minor + j1, i * n_minor + j1
    tri = np.stack([a, c, d, a, b, c], axis=2).reshape(-1, 3)  # counter-clockwise from outside
    g.add(p, n, tri, _xform(axis, offset))
    return g


# ---------------------------------------------------------------------------------------------
# The assembly


MATERIALS: dict[str, tuple[tuple[float, float, float, float], float, float]] = {
    # name: (baseColorFactor, metallic, roughness)
    "CastIron": ((0.22, 0.23, 0.25, 1.0), 0.7, 0.55),
    "Aluminium": ((0.80, 0.81, 0.83, 1.0), 1.0, 0.32),
    "RedPaint": ((0.62, 0.05, 0.04, 1.0), 0.0, 0.35),
    "Steel": ((0.62, 0.63, 0.65, 1.0), 1.0, 0.22),
    "Brass": ((0.78, 0.60, 0.22, 1.0), 1.0, 0.3),
    "Rubber": ((0.03, 0.03, 0.03, 1.0), 0.0, 0.9),
    "BluePaint": ((0.08, 0.20, 0.55, 1.0), 0.0, 0.45),
    "Copper": ((0.72, 0.36, 0.20, 1.0), 1.0, 0.4),
}


@dataclass
class Part:
    name: str
    geo: Geo | None = None
    material: str = "CastIron"
    translation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    rotation: tuple[float, float, float, float] | None = None
    children: list[Part] = field(default_factory=list)


CYL_X = (-0.165, -0.055, 0.055, 0.165)
"""Cylinder centres along the crankshaft (x)."""
SEG = 40


def build_engine() -> Part:
    block = Part("Block", box(Geo(), (0.48, 0.22, 0.24)), "CastIron", (0.0, -0.05, 0.0))
    oil_pan = Part("OilPan", box(box(Geo(), (0.44, 0.08, 0.22)), (0.40, 0.02, 0.26),
                                  (0, 0.04, 0)), "BluePaint", (0.0, -0.20, 0.0))
    bank = Part("CylinderBank", translation=(0.0, 0.1, 0.0), children=[
        Part(f"Cylinder_{k + 1}", cylinder(Geo(), 0.048, 0.10, SEG), "Aluminium", (x, 0.0, 0.0))
        for k, x in enumerate(CYL_X)
    ])
    pistons = Part("Pistons", translation=(0.0, 0.1, 0.0), children=[
        Part(f"Piston_{k + 1}", torus(cylinder(Geo(), 0.042, 0.05, SEG), 0.042, 0.003, SEG, 8,
                                      offset=(0, 0.015, 0)),
             "Steel", (x, 0.02 if k % 3 == 0 else -0.02, 0.0), children=[
                 Part(f"ConnectingRod_{k + 1}", box(Geo(), (0.018, 0.14, 0.03)), "Steel",
                      (0.0, -0.09, 0.0)),
             ])
        for k, x in enumerate(CYL_X)
    ])
    head = Part("CylinderHead", box(Geo(), (0.46, 0.06, 0.22)), "Aluminium", (0.0, 0.18, 0.0),
                children=[Part("ValveCover", box(box(Geo(), (0.42, 0.04, 0.17)),
                                                 (0.36, 0.015, 0.12), (0, 0.027, 0)),
                               "RedPaint", (0.0, 0.05, 0.0))])
    crank_geo = cylinder(Geo(), 0.018, 0.56, SEG, axis="x")
    for k, x in enumerate(CYL_X):
        dy = 0.03 if k % 3 == 0 else -0.03
        cylinder(crank_geo, 0.05, 0.015, SEG, axis="x", offset=(x - 0.03, 0, 0))
        cylinder(crank_geo, 0.05, 0.015, SEG, axis="x", offset=(x + 0.03, 0, 0))
        cylinder(crank_geo, 0.014, 0.05, SEG // 2, axis="x", offset=(x, dy, 0))
    crank = Part("Crankshaft", crank_geo, "Steel", (0.0, -0.12, 0.0), children=[
        Part("Flywheel", cylinder(Geo(), 0.13, 0.025, 64, axis="x"), "CastIron",
             (0.30, 0.0, 0.0), children=[
                 Part("RingGear", torus(Geo(), 0.13, 0.012, 120, 10, axis="x"), "Steel"),
             ]),
        Part("CrankPulley", _pulley(0.06), "Aluminium", (-0.30, 0.0, 0.0)),
    ])
    front = Part("FrontAccessories", translation=(-0.30, 0.0, 0.0), children=[
        Part("WaterPumpPulley", _pulley(0.045), "Aluminium", (0.0, 0.05, 0.0)),
        Part("AlternatorPulley", _pulley(0.03), "Aluminium", (0.0, 0.04, 0.16)),
        Part("Alternator", torus(cylinder(Geo(), 0.06, 0.10, SEG, axis="x"), 0.06, 0.006,
                                 SEG, 8, axis="x"),
             "Aluminium", (0.07, 0.04, 0.16)),
        Part("Belt", torus(Geo(), 0.11, 0.006, 96, 8, axis="x"), "Rubber",
             (-0.012, -0.03, 0.04)),
    ])
    runners = [
        Part(f"Runner_{k + 1}", torus(Geo(), 0.06, 0.016, 36, 12, axis="x"), "Aluminium",
             (x, 0.0, 0.0))
        for k, x in enumerate(CYL_X)
    ]
    intake = Part("IntakeManifold", translation=(0.0, 0.17, -0.16), children=[
        Part("Plenum", cylinder(Geo(), 0.04, 0.44, SEG, axis="x"), "Aluminium",
             (0.0, 0.06, -0.06)),
        *runners,
        Part("ThrottleBody", torus(cylinder(Geo(), 0.035, 0.05, SEG, axis="x"),
                                   0.035, 0.006, SEG, 12, axis="x"), "Aluminium",
             (0.25, 0.06, -0.06)),
    ])
    exhaust = Part("ExhaustManifold", translation=(0.0, 0.12, 0.16), children=[
        *[Part(f"Header_{k + 1}", torus(Geo(), 0.05, 0.014, 36, 12, axis="x"), "Copper",
               (x, -0.04, 0.0)) for k, x in enumerate(CYL_X)],
        Part("Collector", cylinder(Geo(), 0.025, 0.42, SEG, axis="x"), "Copper",
             (0.0, -0.09, 0.05)),
    ])
    bolts = Part("HeadBolts", translation=(0.0, 0.215, 0.0), children=[
        Part(f"Bolt_{k + 1}", cylinder(cylinder(Geo(), 0.008, 0.012, 6), 0.004, 0.03, 12,
                                       offset=(0, -0.02, 0)),
             "Brass", (-0.2 + 0.08 * (k // 2), 0.0, -0.1 if k % 2 else 0.1))
        for k in range(12)
    ])
    mounts = Part("EngineMounts", children=[
        Part(f"Mount_{side}", cylinder(box(Geo(), (0.06, 0.02, 0.06)), 0.02, 0.04, 32,
                                       offset=(0, -0.03, 0)),
             "Rubber", (x, -0.1, z))
        for side, x, z in (("Left", -0.12, 0.14), ("Right", 0.12, 0.14))
    ])
    return Part("Engine", children=[block, oil_pan, bank, pistons, head, crank, front, intake,
                                    exhaust, bolts, mounts])


def _pulley(radius: float) -> Geo:
    g = cylinder(Geo(), radius, 0.03, SEG, axis="x")
    for dx in (-0.008, 0.0, 0.008):
        torus(g, radius, 0.004, SEG, 8, axis="x", offset=(dx, 0, 0))
    cylinder(g, 0.012, 0.05, 24, axis="x")
    return g


# ---------------------------------------------------------------------------------------------
# GLB writer


def _pad(b: bytes, fill: bytes) -> bytes:
    return b + fill * (-len(b) % 4)


def write_glb(root: Part, path: Path) -> None:
    mat_names = list(MATERIALS)
    doc: dict[str, object] = {
        "asset": {"version": "2.0", "generator": "farview assets/make_sample.py"},
        "scene": 0,
        "scenes": [{"name": "SampleEngine", "nodes": [0]}],
        "nodes": [], "meshes": [], "accessors": [], "bufferViews": [],
        "materials": [
            {"name": n, "pbrMetallicRoughness": {
                "baseColorFactor": list(c), "metallicFactor": m, "roughnessFactor": r}}
            for n, (c, m, r) in MATERIALS.items()
        ],
    }
    nodes: list[dict[str, object]] = doc["nodes"]  # type: ignore[assignment]
    meshes: list[dict[str, object]] = doc["meshes"]  # type: ignore[assignment]
    accessors: list[dict[str, object]] = doc["accessors"]  # type: ignore[assignment]
    views: list[dict[str, object]] = doc["bufferViews"]  # type: ignore[assignment]
    blob = bytearray()

    def view(data: bytes, target: int) -> int:
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(data),
                      "target": target})
        blob.extend(_pad(data, b"\0"))
        return len(views) - 1

    def accessor(arr: npt.NDArray[np.generic], ctype: int, atype: str, target: int,
                 minmax: bool = False) -> int:
        acc: dict[str, object] = {"bufferView": view(arr.tobytes(), target), "componentType": ctype,
                                  "count": len(arr), "type": atype}
        if minmax:
            acc["min"] = [float(v) for v in arr.min(axis=0)]
            acc["max"] = [float(v) for v in arr.max(axis=0)]
        accessors.append(acc)
        return len(accessors) - 1

    def add(part: Part) -> int:
        index = len(nodes)
        node: dict[str, object] = {"name": part.name}
        nodes.append(node)
        if part.geo is not None:
            p, n, i = part.geo.arrays()
            n = (n / np.linalg.norm(n, axis=1, keepdims=True)).astype(np.float32)
            if len(p) < 65536:
                idx = accessor(i.astype(np.uint16), 5123, "SCALAR", 34963)
            else:
                idx = accessor(i, 5125, "SCALAR", 34963)
            meshes.append({"name": part.name, "primitives": [{
                "attributes": {"POSITION": accessor(p, 5126, "VEC3", 34962, minmax=True),
                               "NORMAL": accessor(n, 5126, "VEC3", 34962)},
                "indices": idx, "material": mat_names.index(part.material), "mode": 4}]})
            node["mesh"] = len(meshes) - 1
        if any(part.translation):
            node["translation"] = list(part.translation)
        if part.rotation is not None:
            node["rotation"] = list(part.rotation)
        if part.children:
            node["children"] = [add(c) for c in part.children]
        return index

    add(root)
    doc["buffers"] = [{"byteLength": len(blob)}]
    json_chunk = _pad(json.dumps(doc, separators=(",", ":")).encode(), b" ")
    bin_chunk = bytes(blob)
    total = 12 + 8 + len(json_chunk) + 8 + len(bin_chunk)
    out = b"".join([
        struct.pack("<4sII", b"glTF", 2, total),
        struct.pack("<II", len(json_chunk), 0x4E4F534A), json_chunk,
        struct.pack("<II", len(bin_chunk), 0x004E4942), bin_chunk,
    ])
    path.write_bytes(out)


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUTPUT
    write_glb(build_engine(), out)
    print(f"wrote {out} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
