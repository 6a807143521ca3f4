"""The package layout keeps its promises: one import namespace (``farview``), explicit public
APIs, and each process loading only its own side (checked on real started processes)."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import types
import zipfile
from pathlib import Path

import pytest

from farview.input.launch import HOST_MODULE
from tests.service.conftest import RunningService, launch_service, wait_for

REPO = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("input", "streaming", "host", "service", "client", "assets")


@pytest.mark.parametrize("face", ["farview", "farview.client", "farview.input"])
def test_each_package_face_exports_exactly_its_public_names(face: str) -> None:
    package = importlib.import_module(face)
    homes = getattr(package, "_HOMES", None)
    if homes is not None:  # a lazy face: every name in __all__ has a home that defines it
        assert set(package.__all__) == set(homes)
        assert set(package.__all__) <= set(dir(package))
    for name in package.__all__:
        assert getattr(package, name) is not None
    public = {n for n, v in vars(package).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)
              and n not in ("annotations", "TYPE_CHECKING", "lazy_exports")}
    assert public <= set(package.__all__), public - set(package.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        package.nothing  # noqa: B018


def test_every_client_error_is_exported_by_the_faces() -> None:
    """``farview.TooManySessionsError`` was missing (in the client's face and the error tree)."""
    import farview
    import farview.client
    from farview.client import errors

    classes = {n for n, v in vars(errors).items()
               if isinstance(v, type) and issubclass(v, Exception) and not n.startswith("_")}
    assert classes <= set(farview.__all__) & set(farview.client.__all__), \
        classes - (set(farview.__all__) & set(farview.client.__all__))


def test_importing_a_face_loads_nothing_heavy() -> None:
    code = ("import sys, farview, farview.client, farview.client.cli;"
            "from farview import RemoteRenderingClient, Pose, Frame, FarviewError;"
            "heavy = [m for m in sys.modules if m.split('.')[0] in ('aiortc', 'av', 'OpenGL', 'glfw')];"
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", (out.stdout, out.stderr)


def _imported(log: str) -> set[str]:
    """Module names from ``-X importtime`` lines (``import time: self | cumulative | name``)."""
    names = set()
    for line in log.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_service_loads_no_streaming_and_its_hosts_no_client(tmp_path: Path) -> None:
    """A real service and render host, started with Python's import log on: the service never
    loads GL, aiortc or PyAV; the host never loads the client package."""
    svc: RunningService = launch_service(tmp_path / "data", env={"PYTHONPROFILEIMPORTTIME": "1"})
    try:
        with svc.client() as client:
            session = client.create_session("layout", max_lease_time_minutes=60)
            session.wait_until_ready(90)
            hosts = svc.host_processes()
            assert hosts and HOST_MODULE in hosts[0].cmdline()
            logs = list((svc.data_dir / "hosts").rglob("layout.log"))
            wait_for(lambda: "farview.host.runtime" in logs[0].read_text(), 30, "the host's import log")
            session.stop()
    finally:
        svc.stop()
    service_modules = _imported(svc.output())
    host_modules = _imported(logs[0].read_text(errors="replace"))
    assert "farview.service.app" in service_modules and "farview.host.runtime" in host_modules
    heavy = {m for m in service_modules if m.split(".")[0] in ("aiortc", "av", "OpenGL", "glfw")
             or m.startswith(("farview.host", "farview.streaming"))}
    assert heavy == set(), f"the service loaded {sorted(heavy)[:10]}"
    client_side = {m for m in host_modules if m.startswith("farview.client") or m.split(".")[0] == "client"}
    assert client_side == set(), f"the host loaded {sorted(client_side)}"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_wheel_puts_only_farview_at_the_top_level_and_its_demo_runs(tmp_path: Path) -> None:
    """Build the wheel, check what it installs, install it in a fresh venv (its dependencies from
    this environment) and run ``farview demo --headless`` from there."""
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(dist), str(REPO)], capture_output=True, text=True, timeout=240)
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = dist.glob("farview-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"farview"}, sorted(top)
    for package in SUBPACKAGES:
        assert f"farview/{package}/__init__.py" in names, package
    assert "farview/assets/sample_engine.glb" in names
    assert any(n.startswith("farview/host/shaders/") for n in names)
    top_level = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
    assert zipfile.ZipFile(wheel).read(top_level).decode().split() == ["farview"]

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True, timeout=120)  # (this pip installs into it: ensurepip took 5 s)
    py = venv / "bin" / "python"
    install = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                              "--no-index", str(wheel)], capture_output=True, text=True, timeout=120)
    assert install.returncode == 0, install.stderr[-2000:]
    env = {k: v for k, v in os.environ.items()
           if k not in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "DISPLAY", "PYTHONPATH")}
    env["FARVIEW_DATA_DIR"] = str(tmp_path / "data")
    code = "import farview, farview.host; print(farview.__file__, farview.host.__file__)"
    where = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env,
                           timeout=60)
    assert where.returncode == 0 and str(venv) in where.stdout and str(REPO) not in where.stdout, where
    demo = subprocess.run([str(venv / "bin" / "farview"), "demo", "--headless", "--duration", "2", "--size", "320x240"],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=200)
    assert demo.returncode == 0, demo.stderr[-3000:]
    presented = int(re.findall(r"(\d+) frames? presented", demo.stderr)[0])
    assert presented > 0, demo.stderr[-2000:]
