"""The viewer's scene actions on a real host: a click picks the part under the cursor and
selects it, C frames it, X hides it (its pixels vanish from the next frame), U shows it
again."""

from __future__ import annotations

import time
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from farview.client.connection import connect_to_host
from farview.client.viewer.app import (
    StreamWorker,
    _Picker,
    default_camera,
    focus_camera,
    frame_camera,
)
from farview.client.viewer.controls import Controls
from farview.client.viewer.events import KEY_V, KeyEvent
from farview.input.camera import framing
from farview.input.events import Action, InputEvent
from farview.input.pose import Fov, Pose, PoseRequest, View
from farview.streaming.frame import Frame
from farview.streaming.mailbox import LatestMailbox
from tests.hosting import RunningHost, model_mask, start_host

pytestmark = pytest.mark.slow
SIZE = (320, 240)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHost]:
    running = start_host(tmp_path_factory.mktemp("pick"))
    yield running
    running.stop()


def _frame_for(worker: StreamWorker, mailbox: LatestMailbox, n: int) -> Frame:
    """The frame rendered for the n-th request: each asks from a view of its own (0.1 mm apart),
    so the frame that shows it is known by its views (the connection numbers the poses)."""
    position = (0.0, 0.1, 1.4 + n * 1e-4)
    request = PoseRequest((View(Pose(position), Fov.symmetric(60, 4 / 3)),), SIZE, keyframe=True)
    worker.send_pose(request)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        frame = mailbox.take()
        if frame is not None and frame.pose is not None and frame.pose.views == request.views:
            return frame
        time.sleep(0.01)
    raise AssertionError(f"no frame for the pose from {position}")


def _wait(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 20
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_click_selects_x_hides_u_shows(host: RunningHost) -> None:
    mailbox = LatestMailbox()

    async def connect(frames):  # type: ignore[no-untyped-def]
        return await connect_to_host(host.whep_url, host.token(), viewport=SIZE, mailbox=frames)

    worker = StreamWorker(connect, mailbox)
    worker.start()
    try:
        _wait(worker.connected_once.is_set, "connection")
        frame = _frame_for(worker, mailbox, 10)
        mask = model_mask(frame.to_rgb())
        ys, xs = np.nonzero(mask)
        cx, cy = float(np.median(xs)), float(np.median(ys))
        worker.pick(frame, cx, cy)
        _wait(lambda: worker.selected is not None, "a selection")
        assert worker.selected is not None and worker.notice.startswith("selected ")
        # C frames the selection: the camera's target moves to the part's centre, closer
        # than the whole model's framing
        worker.frame_selection()
        _wait(lambda: worker.focus_bounds is not None, "the selection's bounds")
        part = worker.focus_bounds
        camera = default_camera()
        assert focus_camera(camera, worker) and worker.focus_bounds is None
        np.testing.assert_allclose(camera.target, np.add(part.min, part.max) / 2)
        whole = framing(worker.scene_bounds.min, worker.scene_bounds.max)
        assert camera.distance < whole.distance
        original = frame.to_rgb().astype(int)
        worker.hide_selection()
        _wait(lambda: worker.hidden, "hiding")
        hidden = _frame_for(worker, mailbox, 12).to_rgb().astype(int)
        worker.show_all()
        _wait(lambda: not worker.hidden, "showing again")
        shown = _frame_for(worker, mailbox, 13).to_rgb().astype(int)
        # around the picked pixel, hiding changes the picture; showing again restores it
        y0, y1, x0, x1 = int(cy) - 4, int(cy) + 5, int(cx) - 4, int(cx) + 5
        hidden_change = np.abs(hidden - original)[y0:y1, x0:x1].mean()
        restored_change = np.abs(shown - original)[y0:y1, x0:x1].mean()
        assert hidden_change > 10, "hiding the picked part should change the pixels under the cursor"
        assert restored_change < hidden_change / 3, "showing all should restore the part"
        # nothing selected or hidden: X and U say so (X did nothing and said nothing; U said
        # "showing 0 hidden part(s) again")
        worker.hide_selection()
        _wait(lambda: worker.notice == "nothing selected: click a part first", "X's notice")
        worker.show_all()
        _wait(lambda: worker.notice == "nothing is hidden", "U's notice")
        # V changes what a drag does: the new mode is said (it changed silently)
        controls = Controls(default_camera())
        picker = _Picker(worker)
        picker.loop = SimpleNamespace(controls=controls)  # what the picker reads of the loop
        for expected in ("fly mode: drag looks around", "orbit mode: drag orbits"):
            controls.handle(KeyEvent(KEY_V, Action.PRESS))  # the loop's controls take it first
            picker.on_input(InputEvent.key_event(KEY_V, Action.PRESS))
            assert worker.notice.startswith(expected), worker.notice
        # a window made upright: its home view (R) fits the model across the width, and is
        # only remembered (the camera does not jump)
        wide, upright = default_camera(), default_camera()
        assert frame_camera(wide, worker, 16 / 9)
        before = (upright.target, upright.distance)
        assert frame_camera(upright, worker, 0.4, go=False)
        assert (upright.target, upright.distance) == before
        upright.reset()
        assert upright.distance == pytest.approx(wide.distance / 0.4)
    finally:
        worker.stop()


def test_a_connection_lost_as_it_is_made_is_said_and_made_again(host: RunningHost) -> None:
    """Found by the suite under load: the session service stopped while the view read the
    scene's bounds; the connection closed, the worker's next send_pose raised, and the worker
    ended without a word, the view running on with no stream until --duration. Here the first
    connection is closed (as the host would close it) before connect returns."""
    mailbox = LatestMailbox()
    made = []

    async def connect(frames):  # type: ignore[no-untyped-def]
        conn = await connect_to_host(host.whep_url, host.token(), viewport=SIZE, mailbox=frames)
        made.append(conn)
        if len(made) == 1:
            await conn.close()
        return conn

    worker = StreamWorker(connect, mailbox)
    worker.send_pose(PoseRequest((View(Pose((0.0, 0.1, 1.4)), Fov.symmetric(60, 4 / 3)),), SIZE))
    worker.start()
    try:
        _wait(lambda: worker.reconnects == 1, "a second connection")
        assert worker.drops == 1 and worker.ended is None
        assert made[1].is_connected
        _frame_for(worker, mailbox, 20)  # and it streams
    finally:
        worker.stop()


def test_a_reconnect_refused_as_busy_is_tried_again_for_a_while(host: RunningHost) -> None:
    """Found by hand: a host frozen for 12 s answered the view's reconnect while it still held
    the view's own dead connection, and the view exited 4, "another client is connected".
    After a drop, a busy host is now tried again for a few seconds. Here the host is taken by
    another client for 2 s just as the view reconnects."""
    import asyncio

    mailbox = LatestMailbox()
    calls = []

    async def connect(frames):  # type: ignore[no-untyped-def]
        calls.append(time.monotonic())
        if len(calls) == 2:  # the reconnect: another client takes the host first, for 2 s
            other = await connect_to_host(host.whep_url, host.token(), viewport=SIZE)
            asyncio.get_running_loop().call_later(2.0, lambda: asyncio.ensure_future(other.close()))
        conn = await connect_to_host(host.whep_url, host.token(), viewport=SIZE, mailbox=frames)
        if len(calls) == 1:  # the first connection drops at once
            await conn.close()
        return conn

    worker = StreamWorker(connect, mailbox)
    worker.start()
    try:
        _wait(lambda: worker.reconnects == 1 or worker.ended is not None, "a second connection")
        assert worker.ended is None, worker.ended
        assert len(calls) >= 3 and worker.drops == 1  # (refused at least once, then in)
        _frame_for(worker, mailbox, 30)
    finally:
        worker.stop()


def test_a_session_that_ends_while_the_view_connects_is_said_at_once() -> None:
    """Found by hand: a host killed while the view connected left it silent until the
    connection's 15-s timeout. The session is now checked every 2 s while connecting."""
    from farview.client.viewer.app import EXIT_SESSION_ENDED

    started = []

    async def connect(frames):  # type: ignore[no-untyped-def]  # a host that never answers
        import asyncio

        started.append(time.monotonic())
        await asyncio.sleep(60)

    async def session_check() -> str | None:
        return "session s is Error: its render host was killed; create a new session" \
            if started and time.monotonic() - started[0] > 1.0 else None

    worker = StreamWorker(connect, LatestMailbox(), session_check=session_check)
    worker.start()
    try:
        _wait(lambda: worker.ended is not None, "the view to give up")
        assert worker.ended == (EXIT_SESSION_ENDED,
                                "session s is Error: its render host was killed; create a new session")
    finally:
        worker.stop()
