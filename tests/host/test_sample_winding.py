"""The shipped sample's triangles face outwards (counter-clockwise, as glTF requires): the
renderer back-face culls single-sided materials, so an inverted part would show holes."""

from __future__ import annotations

import numpy as np

from farview.host.gltf import load_model
from farview.host.runtime import SAMPLE_MODEL


def test_every_sample_triangle_winds_with_its_normals() -> None:
    model = load_model(SAMPLE_MODEL)
    for mesh in model.meshes:
        for prim in mesh.primitives:
            tri = prim.indices.reshape(-1, 3)
            p, n = prim.positions, prim.normals
            face = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
            inverted = np.einsum("ij,ij->i", face, n[tri].sum(axis=1)) < 0
            assert not inverted.any(), f"{mesh.name}: {int(inverted.sum())} of {len(tri)} triangles wind inwards"
            assert not prim.material.double_sided
