from __future__ import annotations

import os

from farview.host.egl import PATH_MESA_SURFACELESS, PATH_NVIDIA_DEVICE, EglContext


def test_context_reports_path_and_renderer(egl_context: EglContext) -> None:
    assert os.environ["PYOPENGL_PLATFORM"] == "egl"
    assert egl_context.path in (PATH_NVIDIA_DEVICE, PATH_MESA_SURFACELESS)
    assert egl_context.renderer
    major = int(egl_context.version.split(".")[0])
    assert major >= 3
