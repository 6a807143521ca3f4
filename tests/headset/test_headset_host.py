"""The simulated headset against a real render host: stereo pixels, reprojection pixels, and the
angular error on the fast head-turn trace with and without prediction + reprojection.

Robust on a loaded machine: generous timeouts, no timing assertions; the error comparison is a
correctness property (a frame shown for the newest pose is closer to the head than one shown for
an older pose), measured on the same frames.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from farview.client.connection import RenderingConnection, connect_to_host
from farview.client.headset.app import MOVING_DEG_S, HeadsetSettings, format_summary, run_headset, summarize
from farview.client.headset.reprojection import apply_homography, frame_homographies, reproject_rgb
from farview.client.viewer.app import StreamWorker
from farview.input.headset import (
    SIMULATED_HEADSET,
    HeadsetDescription,
    split_eyes,
    stereo_pose_message,
    stereo_request,
)
from farview.input.mathutil import quat_from_yaw_pitch
from farview.input.pose import Pose, PoseMessage
from farview.input.pose_sources import DEFAULT_HEAD_POSITION, SimulatedHeadset, headturn_trace
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox
from tests.hosting import RunningHost, centroid_x, model_mask, start_host

pytestmark = pytest.mark.slow

HEADSET = SIMULATED_HEADSET  # 320×240 per eye: a 640×240 stream, cheap on llvmpipe


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    running = start_host(tmp_path_factory.mktemp("host"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
async def conn(host: RunningHost) -> AsyncIterator[RenderingConnection]:
    c = await connect_to_host(host.whep_url, host.token(), viewport=HEADSET.viewport, timeout=60.0)
    try:
        yield c
    finally:
        await c.close()
        await asyncio.sleep(0.2)


async def render(conn: RenderingConnection, head: Pose, headset: HeadsetDescription = HEADSET) -> Frame:
    """The frame rendered for ``head`` (stereo), waiting generously."""
    msg = conn.send_pose(stereo_request(head, headset, keyframe=True))
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:
        frame = await conn.next_frame(timeout=60.0)
        if frame.pose is not None and frame.pose.sequence == msg.sequence:
            return frame
    raise AssertionError(f"no frame for pose {msg.sequence}")


def head_at(yaw_deg: float = 0.0) -> Pose:
    return Pose(DEFAULT_HEAD_POSITION, quat_from_yaw_pitch(math.radians(yaw_deg), 0.0))


def eye_centroids(rgb: np.ndarray) -> tuple[float, float]:
    (l0, l1), (r0, r1) = split_eyes(rgb.shape[1])
    return centroid_x(rgb[:, l0:l1]), centroid_x(rgb[:, r0:r1])


async def test_both_eyes_show_the_model_from_views_an_ipd_apart(conn: RenderingConnection) -> None:
    frame = await render(conn, head_at())
    assert (frame.width, frame.height) == HEADSET.viewport
    rgb = frame.to_rgb()
    (l0, l1), (r0, r1) = split_eyes(frame.width)
    for half in (rgb[:, l0:l1], rgb[:, r0:r1]):
        assert 0.02 < model_mask(half).mean() < 0.9, "each eye should show the model"
    left_x, right_x = eye_centroids(rgb)
    # The left eye sits ipd/2 to the left: it sees the model further right than the right eye does.
    disparity = left_x - right_x
    # expected: ipd / (depth × (tan_right − tan_left)) of an eye's width, the model ~1 m away
    expected = HEADSET.ipd_m / (1.0 * (HEADSET.left_fov.tan_right - HEADSET.left_fov.tan_left))
    assert 0.4 * expected < disparity < 2.5 * expected, (disparity, expected)
    # the same head with the eyes together: no disparity
    mono_eyes = HeadsetDescription(HEADSET.eye_resolution, 0.0, HEADSET.left_fov, HEADSET.right_fov)
    same_l, same_r = eye_centroids((await render(conn, head_at(), mono_eyes)).to_rgb())
    assert abs(same_l - same_r) < 0.25 * expected
    assert same_r < left_x and same_l > right_x  # the centre view lies between the eyes


async def test_reprojection_shows_the_old_frame_as_the_new_orientation_would(conn: RenderingConnection) -> None:
    old = await render(conn, head_at(0.0))
    new = await render(conn, head_at(6.0))  # turned 6° left: the model moves right
    assert old.pose is not None
    target = new.to_rgb().astype(int)
    raw = old.to_rgb()
    homographies = frame_homographies(old.pose, head_at(6.0).orientation)
    warped = reproject_rgb(raw, homographies)
    # compare where the reprojection had data
    eye_w = old.width // 2
    u = (np.arange(eye_w) + 0.5) / eye_w
    v = (np.arange(old.height) + 0.5) / old.height
    uu, vv = np.meshgrid(u, v)
    valid = np.concatenate([apply_homography(h, uu, vv)[2] for h in homographies], axis=1)
    err_raw = np.abs(raw.astype(int) - target)[valid].mean()
    err_warped = np.abs(warped.astype(int) - target)[valid].mean()
    assert err_warped < 0.6 * err_raw, (err_warped, err_raw)
    for got, want, before in zip(eye_centroids(warped), eye_centroids(new.to_rgb()), eye_centroids(raw), strict=True):
        assert abs(got - want) < 0.3 * abs(want - before), (got, want, before)


def test_headturn_angular_error_drops_with_prediction_and_reprojection(
        host: RunningHost, capsys: pytest.CaptureFixture[str]) -> None:
    mailbox = LatestMailbox()

    async def connect(frames):  # type: ignore[no-untyped-def]
        return await connect_to_host(host.whep_url, host.token(), viewport=HEADSET.viewport, mailbox=frames,
                                     timeout=60.0)

    worker = StreamWorker(connect, mailbox)
    trace = headturn_trace(yaw_deg=90.0, turn_s=0.4, hold_s=0.3)
    source = SimulatedHeadset(trace, loop=True)
    # wait for the stream before the clock starts: the first turn must meet a flowing stream
    started = time.monotonic()
    result = run_headset(worker, mailbox, source, HeadsetSettings(headset=HEADSET), duration=None,
                         stop_when=lambda: _enough(mailbox, started))
    assert result.exit_code == 0, result.message
    errors = result.errors
    with capsys.disabled():
        print("\n" + format_summary(errors))
    moving = [e for e in errors if e.head_speed_deg_s >= MOVING_DEG_S]
    assert len(moving) >= 8, f"too few frames during the turns ({len(moving)} of {len(errors)})"
    s = summarize(errors, moving_only=True)
    for stat in ("mean", "p99"):
        assert s["corrected_deg"][stat] < 0.5 * s["uncorrected_deg"][stat], s
        assert s["reprojected_deg"][stat] < s["uncorrected_deg"][stat], s
    assert all(e.presented_deg == e.corrected_deg for e in errors)
    assert all(e.pose_to_present_ms > 0 for e in errors)


def _enough(mailbox: LatestMailbox, started: float) -> bool:
    """Stop after 6 s of stream (3 turns and back) or 90 s in all."""
    return mailbox.received >= 1 and (time.monotonic() - started > 90.0 or _stream_time(mailbox) > 6.0)


_first_frame: dict[int, float] = {}


def _stream_time(mailbox: LatestMailbox) -> float:
    first = _first_frame.setdefault(id(mailbox), time.monotonic())
    return time.monotonic() - first


def test_stereo_message_keeps_the_headset_viewport() -> None:
    msg = stereo_pose_message(1, 0, head_at(), HEADSET)
    assert PoseMessage.decode(msg.encode()).viewport == (640, 240)
