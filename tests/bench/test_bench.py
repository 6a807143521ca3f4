"""``farview bench`` end to end: a real service, host and stream, a short headless run with
``--verify``; checks the JSON's fields and that no frame's pixels disagreed with its metadata.

No assertions on speed: this machine is shared and the numbers are noisy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LATENCIES = ("latency_pose_to_receive", "latency_receive_to_present", "latency_pose_to_present")
COUNTS = ("video_frames_received", "video_frames_reused", "video_frames_skipped", "video_frames_discarded")


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_short_bench_writes_json_and_plot_and_pixels_agree(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()
           if k not in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "DISPLAY")}
    env["FARVIEW_DATA_DIR"] = str(tmp_path / "data")
    proc = subprocess.run(
        [sys.executable, "-m", "farview", "bench", "--verify", "--duration", "2", "--warmup", "0.5",
         "--resolution", "320x240", "--headless", "--trajectory", "shake", "--output", str(out)],
        capture_output=True, text=True, timeout=80, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pose → present" in proc.stdout
    assert "stock aiortc / farview" in proc.stdout
    gaps = next(line for line in proc.stdout.splitlines() if line.startswith("longest gap ms"))

    doc = json.loads((out / "bench-320x240-60.json").read_text())
    assert (out / "bench-320x240-60.png").stat().st_size > 10_000
    assert doc["farview_bench"] == 1
    assert doc["config"]["resolution"] == "320x240" and doc["config"]["verify"] is True
    assert doc["machine"]["cpu_count"] >= 1
    assert set(doc["summary"]) == {"farview", "stock_aiortc"}
    for mode, summary in doc["summary"].items():
        for key in LATENCIES:
            assert set(summary[key]) == {"p50", "p95", "p99", "max", "mean", "n"}, (mode, key)
            assert summary[key]["n"] > 0 and summary[key]["p50"] > 0, (mode, key)
        for key in COUNTS:
            assert isinstance(summary[key], int), (mode, key)
        assert summary["video_frames_received"] > 0
        for stage in ("host_wait", "host_render", "host_readback", "host_convert", "network", "decode"):
            assert summary[stage]["n"] > 0, (mode, stage)
        assert summary["cpu_percent"]["client"] is not None
        assert summary["cpu_percent"]["host"] is not None, "the host process was not found"
        verify = summary["verify"]
        assert verify["mismatches"] == 0, (mode, verify)
        assert verify["frames_checked"] > 0
        assert verify["unreadable"] <= verify["frames_checked"] // 10, (mode, verify)
        assert verify["latency_pose_to_present_from_pixels"]["n"] > 0
    farview = doc["summary"]["farview"]
    doc_gap = f"{farview['time_since_last_present']:.1f} / {farview['freezes_over_100ms']}"
    assert doc_gap in gaps, (gaps, doc_gap)  # the table prints the JSON's
    assert doc["summary"]["farview"]["host_encode"]["n"] > 0
    assert doc["summary"]["farview"]["bitrate_kbps"] > 0
    assert doc["floor"]["total"]["n"] > 0 and doc["floor"]["total"]["p50"] > 0
    # headless: the floor stops at the decoded picture, as the headless client does
    assert doc["floor"]["present"] is False and doc["floor"]["upload"]["n"] == 0
    assert "no upload or draw, as the headless client" in proc.stdout
    ratios = doc["ratios"]
    assert ratios["end_to_end_over_floor"] > 0 and ratios["stock_over_farview"] > 0
    # the frame's own stages are sub-intervals of its pose -> present: the stream adds >= 0
    assert ratios["end_to_end_over_own_stages"] >= 1.0
    assert ratios["stream_overhead_p50_ms"] >= 0.0
    assert doc["summary"]["farview"]["own_stages"]["n"] > 0
    assert doc["summary"]["stock_aiortc"]["own_stages"] is None  # its encoder is not timed

    frames = doc["frames"]["farview"]
    assert len(frames) == doc["summary"]["farview"]["video_frames_received"]
    # (a picture the host drew before it had a pose from this client has no pose -> present)
    presented = [f for f in frames if f["presented"] and f["pose_to_present_ms"] is not None]
    assert presented
    first = presented[0]
    for key in ("t", "pose_sequence", "wait_ms", "render_ms", "encode_ms", "network_ms", "decode_ms", "queue_ms",
                "pose_to_receive_ms", "receive_to_present_ms", "pose_to_present_ms", "marker_sequence",
                "pixel_pose_to_present_ms", "size_bytes", "keyframe"):
        assert key in first, key
    assert all(f["marker_sequence"] in (None, f["pose_sequence"]) for f in frames)
    # pose → present is the sum of the stages (network is defined as the rest of pose → receive)
    stages = sum(first[k] or 0 for k in ("wait_ms", "render_ms", "readback_ms", "convert_ms", "encode_ms", "network_ms",
                                         "decode_ms", "queue_ms", "upload_ms", "draw_ms"))
    assert stages == pytest.approx(first["pose_to_present_ms"], abs=0.05)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_bench_without_matplotlib_keeps_its_results_and_names_the_extra(tmp_path: Path) -> None:
    """An install without the ``bench`` extra: matplotlib cannot be imported (a stand-in package
    that raises ImportError comes first on the path). The JSON and the table must still be
    written, and the message must say which extra gives the plot."""
    shadow = tmp_path / "shadow" / "matplotlib"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items()
           if k not in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "DISPLAY")}
    env["FARVIEW_DATA_DIR"] = str(tmp_path / "data")
    env["PYTHONPATH"] = str(shadow.parent)
    proc = subprocess.run(
        [sys.executable, "-m", "farview", "bench", "--duration", "1", "--warmup", "0.3",
         "--resolution", "160x120", "--headless", "--no-baseline", "--no-floor", "--output", str(out)],
        capture_output=True, text=True, timeout=80, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "pose → present" in proc.stdout
    doc = json.loads((out / "bench-160x120-60.json").read_text())
    assert doc["summary"]["farview"]["video_frames_received"] > 0
    assert not (out / "bench-160x120-60.png").exists()
    assert "pip install 'farview[bench]'" in proc.stderr


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_model_that_fails_stops_the_benchs_session_and_bad_settings_make_none(
        tmp_path: Path) -> None:
    """The bench's session stayed Ready when its model failed (until its lease ran out), and
    ``--fps 0`` ended in a traceback after a session was made and its model loaded."""
    from farview.client import RemoteRenderingClient
    from tests.service.conftest import launch_service

    svc = launch_service(tmp_path / "data")
    try:
        env = {k: v for k, v in os.environ.items()
               if k not in ("FARVIEW_URL", "FARVIEW_ACCOUNT_ID", "FARVIEW_ACCOUNT_KEY", "DISPLAY")}
        env["FARVIEW_DATA_DIR"] = str(svc.data_dir)

        def bench(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "farview", "bench", "--headless", *args],
                                  capture_output=True, text=True, timeout=80, cwd=REPO, env=env)

        for args, says in ((("--fps", "0"), "fps must be 1..240, got 0"),
                           (("--duration", "0"), "duration must be positive"),
                           (("--max-bitrate", "20x"), "bit rate must look like 3000000, 3M")):
            usage = bench(*args)
            assert usage.returncode == 2 and says in usage.stderr, usage.stderr
            assert "Traceback" not in usage.stderr
        failed = bench("--model", "/nonexistent/x.glb")
        assert failed.returncode == 5, failed.stderr
        assert "/nonexistent/x.glb failed to load (NotFound)" in failed.stderr
        with RemoteRenderingClient(svc.url, svc.account_id, svc.account_key) as rest:
            statuses = [s.status for s in rest.list_sessions(include_ended=True)]
        assert statuses and set(statuses) == {"Stopped"}, statuses  # the one session, stopped
    finally:
        svc.stop()


def test_a_stereo_runs_report_says_so_and_gets_a_file_of_its_own() -> None:
    from farview.client.bench.report import format_table
    from farview.client.cli.bench import output_stem

    assert output_stem(1280, 720, 60, False) == "bench-1280x720-60"
    assert output_stem(1280, 720, 60, True) == "bench-1280x720-60-stereo"
    config = {"resolution": "1280x720", "fps": 60, "duration_s": 2.0, "trajectory": "headturn",
              "headless": True, "stereo": True}
    doc = {"config": config, "summary": {}, "floor": None, "ratios": {}}
    assert "stereo (two views side by side)" in format_table(doc).splitlines()[0]
    assert "stereo" not in format_table({**doc, "config": {**config, "stereo": False}})


def test_the_bench_finds_the_host_of_the_session_it_measures(tmp_path: Path) -> None:
    """``farview bench --session ID`` with two sessions running said "the render host is not a
    local process here" and reported no host CPU: it took a host only when there was one."""
    import re

    from farview.client.cli.bench import _find_host_pid
    from tests.service.conftest import launch_service

    svc = launch_service(tmp_path / "data")
    try:
        with svc.client() as rest:
            for sid in ("bench-a", "bench-b"):
                rest.create_session(sid, max_lease_time_minutes=5)
            for sid in ("bench-a", "bench-b"):
                rest.open_rendering_session(sid).wait_until_ready(90)
            started = dict(re.findall(r"session (bench-\w): render host pid (\d+) starting",
                                      svc.output()))
            assert set(started) == {"bench-a", "bench-b"}, svc.output()
            for sid, pid in started.items():
                assert _find_host_pid(svc.pid, sid, newest=False) == int(pid)
            assert _find_host_pid(svc.pid, "bench-c", newest=False) is None  # two, neither its own
            for sid in started:
                rest.open_rendering_session(sid).stop()
    finally:
        svc.stop()
