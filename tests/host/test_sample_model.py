from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from farview.host.gltf import load_model
from tests.host.conftest import REPO, SAMPLE


def test_generator_is_deterministic_and_matches_committed(tmp_path: Path) -> None:
    out = tmp_path / "engine.glb"
    subprocess.run([sys.executable, str(REPO / "assets" / "make_sample.py"), str(out)],
                   check=True, capture_output=True, timeout=60)
    assert out.read_bytes() == SAMPLE.read_bytes(), (
        "assets/sample_engine.glb is stale: run python3 assets/make_sample.py and commit it")


def test_sample_loads_with_enough_parts() -> None:
    model = load_model(SAMPLE)
    assert model.triangle_count >= 20_000
    names = [n.name for n in model.nodes]
    assert len(set(names)) == len(names) >= 20
    for part in ("Engine", "Block", "CylinderBank", "Cylinder_1", "Crankshaft", "Flywheel",
                 "OilPan", "IntakeManifold", "Bolt_1"):
        assert part in names
