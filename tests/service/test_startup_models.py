"""Start-up models load after the host answers, and their fate is visible: in the session's
properties (``modelStatus``), to ``farview demo`` (which exits non-zero with the loader's
message), and a host whose service dies while it loads does not outlive it."""

from __future__ import annotations

import http.server
import os
import signal
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from farview.assets import SAMPLE_MODEL
from farview.client.errors import ModelLoadError
from farview.service.auth import public_key_pem
from tests.hosting import new_signing_key
from tests.service.conftest import RunningService, wait_for

pytestmark = pytest.mark.slow
READY_TIMEOUT = 60.0


class _SlowModelServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def slow_model_url() -> Iterator[Callable[[float], str]]:
    """A loopback http server that answers with the sample model after a delay, or once the
    function's ``release`` (an Event) is set."""
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            delay = float(self.path.strip("/").split("/")[0])
            release.wait(delay)
            data = SAMPLE_MODEL.read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = _SlowModelServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def url(delay: float) -> str:
        return f"http://127.0.0.1:{server.server_address[1]}/{delay}/engine.glb"

    url.release = release  # type: ignore[attr-defined]
    try:
        yield url
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_a_slow_model_does_not_delay_ready_and_a_bad_one_is_reported(
        start_service: Callable[..., RunningService], slow_model_url: Callable[[float], str]) -> None:
    svc = start_service()
    with svc.client() as client:
        slow = client.create_session("slow", max_lease_time_minutes=600, models=[slow_model_url(60.0)])
        props = slow.wait_until_ready(READY_TIMEOUT)  # Ready while the model still downloads
        assert [m.status for m in props.model_status] == ["Loading"], props

        # (while the slow one still downloads)
        bad = client.create_session("bad", max_lease_time_minutes=600, models=["no_such_model"])
        bad.wait_until_ready(READY_TIMEOUT)
        with pytest.raises(ModelLoadError, match="no_such_model failed to load \\(NotFound\\)"):
            bad.wait_for_models(60)
        failed = bad.get_properties().model_status[0]
        assert (failed.status, failed.code) == ("Failed", "NotFound")
        assert "no model named 'no_such_model'" in failed.message
        assert slow.get_properties().model_status[0].status == "Loading"
        slow_model_url.release.set()  # type: ignore[attr-defined]
        assert slow.wait_for_models(60).model_status[0].status == "Loaded"
        assert bad.get_properties().status == "Ready"  # the session still streams (empty)


def test_demo_with_a_file_that_is_no_model_exits_with_the_loaders_message(tmp_path: Path) -> None:
    """It ended with "110 frames presented" and exit code 0 (an empty scene)."""
    not_a_model = tmp_path / "buffer.bin"
    not_a_model.write_bytes(os.urandom(4096))
    env = {k: v for k, v in os.environ.items()
           if k not in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "DISPLAY")}
    env["FARVIEW_DATA_DIR"] = str(tmp_path / "data")
    demo = subprocess.run([sys.executable, "-m", "farview", "demo", str(not_a_model), "--headless",
                           "--duration", "5", "--size", "320x240"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert demo.returncode != 0, demo.stderr[-2000:]
    assert "buffer.bin failed to load (InvalidModel)" in demo.stderr
    assert "not a glTF file" in demo.stderr
    assert "frames presented" not in demo.stderr
    # the error first, then the stop it causes (it came after "stopping session…")
    assert demo.stderr.index("failed to load") < demo.stderr.index("stopping session")


def test_a_host_whose_service_dies_while_it_loads_does_not_outlive_it(
        tmp_path: Path, slow_model_url: Callable[[float], str]) -> None:
    """Start-up models used to load before the host watched its parent: a service killed in
    that window left the host running."""
    public_key = public_key_pem(new_signing_key())
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import subprocess, sys, time
        from farview.input.launch import HOST_MODULE, HostConfig
        config = HostConfig(session_id="s", account_id="a", token_public_key={public_key!r},
                            models=({slow_model_url(60.0)!r},))
        host = subprocess.Popen([sys.executable, "-m", HOST_MODULE, "--port", "0"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        host.stdin.write(config.to_json() + "\\n")
        host.stdin.flush()
        print(host.pid, host.stdout.readline().strip(), flush=True)
        time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        host_pid = int(parent.stdout.readline().split()[0])
        time.sleep(1.0)  # the host is downloading its model now
        assert psutil.pid_exists(host_pid)
        parent.send_signal(signal.SIGKILL)
        parent.wait()

        def host_gone() -> bool:
            try:
                return psutil.Process(host_pid).status() == psutil.STATUS_ZOMBIE
            except psutil.NoSuchProcess:
                return True

        wait_for(host_gone, 15, "the orphaned host to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
