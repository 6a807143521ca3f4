"""Shared fixtures for host tests: model paths and one EGL context per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED_MODELS = REPO.parent / "shared" / "models"
SAMPLE = REPO / "assets" / "sample_engine.glb"
FOREIGN = ["Box", "BoxAnimated", "BoxTextured", "CesiumMilkTruck", "Duck"]


@pytest.fixture(scope="module")
def egl_context() -> Iterator[object]:
    from host.egl import EglContext

    ctx = EglContext()
    yield ctx
    ctx.release()
