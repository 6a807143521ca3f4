"""URL loads bound what they decode: a compressed body is undone here, one bounded layer at a
time (httpx used to undo every ``Content-Encoding`` layer before the size budget was checked, so a
few hundred bytes of ``gzip, gzip`` became hundreds of MB). A real loopback http server."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import subprocess
import sys
import textwrap
import threading
import zlib
from collections.abc import Iterator

import pytest

from farview.assets import SAMPLE_MODEL
from farview.host.errors import SourceError
from farview.host.model_store import LoadBudgets, fetch_url

BOMB = gzip.compress(b"\0" * (200 << 20), compresslevel=9)  # 200 MiB of zeros, ~200 KiB
BODIES: dict[str, tuple[bytes, str | None]] = {
    "/model.glb": (SAMPLE_MODEL.read_bytes(), None),
    "/model.glb.gz": (gzip.compress(SAMPLE_MODEL.read_bytes()), "gzip"),
    "/model.glb.deflate": (zlib.compress(SAMPLE_MODEL.read_bytes()), "deflate"),
    "/bomb": (BOMB, "gzip"),
    "/stacked": (gzip.compress(gzip.compress(b"\0" * (8 << 20))), "gzip, gzip"),
    "/brotli": (b"whatever", "br"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body, coding = BODIES[self.path]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            if coding:
                self.send_header("Content-Encoding", coding)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _fetch(url: str, limit: int = 16 << 20) -> bytes:
    return asyncio.run(fetch_url(url, LoadBudgets(max_bytes=limit)))


def test_compressed_models_load_as_sent(server: str) -> None:
    plain = SAMPLE_MODEL.read_bytes()
    for path in ("/model.glb", "/model.glb.gz", "/model.glb.deflate"):
        assert _fetch(server + path) == plain, path


def test_stacked_and_unknown_encodings_are_refused(server: str) -> None:
    with pytest.raises(SourceError, match=r"stacked content encodings \(gzip, gzip\)") as info:
        _fetch(server + "/stacked")
    assert info.value.code == "FetchFailed"
    with pytest.raises(SourceError, match="content encoding 'br'"):
        _fetch(server + "/brotli")


def test_a_decompression_bomb_stops_at_the_budget_without_expanding(server: str) -> None:
    """In a child process, so its peak memory is its own: 200 MiB of zeros behind 200 KiB of
    gzip, against a 16 MiB budget. Refused; the process never grew by the bomb's size."""
    code = textwrap.dedent(f"""
        import asyncio, resource
        from farview.host.errors import SourceError
        from farview.host.model_store import LoadBudgets, fetch_url
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            asyncio.run(fetch_url({server + "/bomb"!r}, LoadBudgets(max_bytes=16 << 20)))
        except SourceError as exc:
            print(exc.code, "|", exc.message)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print("GROWN_KB", grown)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("LimitExceeded | model at") and "decompresses to more than" in out.stdout
    grown_kb = int(out.stdout.split("GROWN_KB")[1])
    print(f"\nFIGURE fetch_bomb_peak_growth_mb: {grown_kb / 1024:.1f}")
    assert grown_kb < 100 * 1024, f"the process grew by {grown_kb} KiB decoding a bomb"
