"""A stream over a lossy, then narrow, network with real packets: the service and its host in one
network namespace, the client in another; random UDP loss both ways (iptables ``statistic``),
then a token-bucket cap on what the host sends (``tc tbf``). Behaviour only, never speed: frames
keep arriving, every frame shown is whole (its pixels carry the pose sequence it was rendered
for, and they match), lost packets are recovered or healed, and the encoder's target goes under
the cap. Numbers under the same conditions: ``benchmarks/bench_impairment.py``."""

from __future__ import annotations

import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.network.netns import Host, Service, farview_service, impair, run_phased, skip_reason, two_hosts

# (alone: a second test beside it starved the encoder once, and a frame's marker blocks were
# left standing from an earlier frame)
pytestmark = [pytest.mark.slow, pytest.mark.alone]
REASON = skip_reason()
CAP_MBIT = 1.0
# 3 %, not 1 %: a 640x360 stream sends a few hundred packets in the 6-s phase, and at 1 % a run
# with no media packet lost at all (or only its NACK lost) is a few per cent likely (CI saw one)
LOSS = 0.03


def _client_run(client: Host, svc: Service, workdir: Path, session_id: str, run: str,
                on_phase: Callable[[str], None]) -> dict[str, Any]:
    """Run ``run`` (the source of ``async def run(session)``, returning a JSON-able result) in
    ``client``'s namespace on a new session of ``svc``. When it calls ``wait_for_test(phase)``,
    ``on_phase(phase)`` runs here (it sets the network) before the client goes on."""
    info, account = svc.info, svc.account
    script = workdir / "client.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio, json, math, sys, time
        from farview import RemoteRenderingClient, Pose
        from farview.input import marker
        from farview.input.mathutil import quat_from_yaw_pitch

        async def wait_for_test(phase):
            # off the event loop: a blocked loop stops reading packets and answering RTCP,
            # and the assembler it resumes gives up what waited (a keyframe follows)
            print("phase", phase, flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)

        async def main():
            with RemoteRenderingClient({info["url"]!r}, {account["account_id"]!r},
                                       open({str(svc.key_file)!r}).read(), verify={info["cert"]!r}) as rest:
                session = rest.create_session({session_id!r}, max_lease_time_minutes=10)
                session.wait_until_ready(90)
                session.wait_for_models(90)
                result = await run(session)
                print(json.dumps(result), flush=True)
                session.stop()
    """) + textwrap.dedent(run) + "\nasyncio.run(main())\n")
    return run_phased(client.command(sys.executable, str(script)), on_phase)


@pytest.mark.skipif(REASON is not None, reason=f"no separated hosts here: {REASON}")
@pytest.mark.timeout(240)
def test_frames_stay_whole_under_loss_and_the_encoder_goes_under_a_cap(tmp_path: Path) -> None:
    run = """
        orbit = {"n": 0}

        async def phase(conn, seconds, frames):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                # the orbit goes on across phases (no jump back to its start, a cut of the
                # whole picture, in the cap phase's first frames)
                orbit["n"] += 1
                n = orbit["n"]
                # an orbit looking at the model: every frame differs, so P-frames carry real
                # change (looking along -z from every point of the circle, the model was out of
                # view half the time, the encoder made a few kbit/s, and a cap that began then
                # cut the target only to 1.2 Mbit/s: CI saw it stay over a 1 Mbit/s cap)
                a = n * 0.05
                conn.send_pose(Pose((1.6 * math.sin(a), 0.3, 1.6 * math.cos(a)),
                                    quat_from_yaw_pitch(a, -0.1)))
                try:
                    while True:  # take what arrived, without waiting
                        f = await conn.next_frame(timeout=0.001)
                        frames.append((time.monotonic(), f.metadata.pose_sequence if f.metadata else None,
                                       marker.read(f.y), f.metadata.target_bitrate if f.metadata else 0,
                                       bool(f.metadata and f.metadata.keyframe)))
                except Exception:
                    pass
                await asyncio.sleep(1 / 30)

        async def run(session):
            conn = await session.connect(viewport=(640, 360), timeout=30)
            await conn.request("configure_stream", verify_marker=True)
            out = {}
            for name in ("loss", "cap"):
                await wait_for_test(name)  # the test sets the network for this phase
                frames = []
                await phase(conn, 6.0, frames)
                stats = await conn.request("get_stats")
                s = conn.statistics()
                out[name] = {"frames": frames, "video": stats["video"],
                             "received_kbps": s.bitrate_kbps,
                             "recovered": s.frames_recovered, "skipped": s.video_frames_skipped,
                             "lost": conn._jitter.packets_lost, "give_ups": conn._jitter.give_ups}
            await conn.close()
            return out
    """
    with two_hosts("lo") as (server, client), farview_service(server, tmp_path, "--port", "0") as svc:
        def on_phase(name: str) -> None:
            if name == "loss":
                impair(server, client, loss=LOSS)
            else:
                impair(server, client, rate_mbit=CAP_MBIT)

        result = _client_run(client, svc, tmp_path, "lossy", run, on_phase)

    for name in ("loss", "cap"):
        phase = result[name]
        frames = phase["frames"]
        assert frames, f"no frame arrived under {name}"
        start, end = frames[0][0], frames[-1][0]
        # frames keep arriving: some in the last third of the phase too (not a rate)
        assert any(t > start + (end - start) * 2 / 3 for t, *_ in frames) and end - start > 2.0, name
        # every frame shown is whole: its pixels say which pose it was rendered for, and that is
        # the pose its metadata names (a frame decoded from a broken reference would not match)
        # (each as its pose, the marker read, and the frame shown before it: pose, keyframe)
        bad = [(seq, got, frames[i - 1][1:5:3] if i else None)
               for i, (_, seq, got, _, _) in enumerate(frames) if seq is None or got != seq % 2**32]
        assert not bad, f"{name}: {len(bad)} of {len(frames)} frames did not match their pose: {bad[:5]}"

    loss = result["loss"]
    # loss was real, and it was answered: retransmissions asked for and sent, frames recovered
    counts = {k: loss[k] for k in ("recovered", "skipped", "lost", "give_ups")}
    assert loss["video"]["retransmissions"]["requested"] > 0, (loss["video"], counts)
    assert loss["recovered"] > 0 or loss["give_ups"] > 0, counts
    cap = result["cap"]["video"]
    assert cap["congestion_control"].startswith("farview")
    assert cap["congestion"]["decreases"] >= 1, cap
    # the frames say what the encoder aimed at: under the cap once it was found, and never back
    # up to the 8 Mbit/s it started with while the cap holds (it probes upward only while the
    # encoder uses a good part of the target)
    # (frame metadata carries the target rounded to 100 kbit/s: "under" includes the cap itself)
    # A target left over the cap is right only when the encoder already sends less than the
    # cap (x264 makes about half of a low target): the full suite once left it at 1.7 Mbit/s
    # after the loss phase's cut, with no loss and no queue under the cap.
    targets = [target for *_, target, _ in result["cap"]["frames"]]
    received = result["cap"]["received_kbps"]
    if min(targets) > CAP_MBIT * 1e6:
        assert received is not None and received <= CAP_MBIT * 1000 and \
            cap["congestion"]["loss"] < 0.02, (targets, received, cap["congestion"])
    else:
        first_under = next(i for i, t in enumerate(targets) if t <= CAP_MBIT * 1e6)
        assert max(targets[first_under:]) < 4e6, (targets[first_under:], cap["congestion"])


@pytest.mark.skipif(REASON is not None, reason=f"no separated hosts here: {REASON}")
@pytest.mark.timeout(240)
def test_a_connection_that_takes_seconds_to_set_up_is_not_dropped(tmp_path: Path) -> None:
    """Every UDP packet is lost for the first 4.5 s after the offer is answered (ICE retries its
    checks; on a lossy link a lost SCTP INIT alone costs 3 s): the host must not take the
    connection for a silent client, as its 3-s liveness timeout once did."""
    run = """
        async def run(session):
            await wait_for_test("cut")  # the test cuts UDP for 4.5 s
            t0 = time.monotonic()
            conn = await session.connect(viewport=(320, 240), timeout=40)
            opened = time.monotonic() - t0
            sent = conn.send_pose(Pose((0.0, 0.3, 1.5)))
            frame = await conn.next_frame(timeout=20)
            while frame.pose is None or frame.pose.sequence < sent.sequence:
                frame = await conn.next_frame(timeout=20)
            await conn.close()
            return {"opened_s": opened, "width": frame.width}
    """
    with two_hosts("su") as (server, client), farview_service(server, tmp_path, "--port", "0") as svc:
        def cut_udp(_phase: str) -> None:
            impair(server, client, loss=1.0)
            threading.Timer(4.5, impair, (server, client)).start()  # the client connects meanwhile

        result = _client_run(client, svc, tmp_path, "slow", run, cut_udp)
    assert result["opened_s"] > 4.0 and result["width"] == 320
