"""The client's one owner of pose identity (PoseCorrelator) and the one latest-frame mailbox."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from farview.input.frame_meta import FrameMetadata
from farview.input.pose import Fov, Pose, PoseRequest, View
from farview.streaming.correlation import PoseCorrelator, now_us
from farview.streaming.mailbox import LatestMailbox
from farview.streaming.receiver import DecodedVideoFrame

REQUEST = PoseRequest((View(Pose((0.0, 0.0, 1.0)), Fov.symmetric(60.0, 16 / 9)),), (64, 36))


def _decoded(pts: int, received_at: float) -> DecodedVideoFrame:
    y = np.zeros((36, 64), np.uint8)
    uv = np.zeros((18, 32), np.uint8)
    return DecodedVideoFrame(y, uv, uv, pts, received_at, received_at + 0.001, 100)


def _meta(pts: int, sequence: int) -> FrameMetadata:
    return FrameMetadata(pts=pts, pose_sequence=sequence, pose_client_time_us=0, width=64, height=36)


def test_the_correlator_numbers_poses_and_stamps_them_on_one_clock() -> None:
    poses = PoseCorrelator()
    before = now_us()
    sent = [poses.stamp(REQUEST) for _ in range(3)]
    assert [m.sequence for m in sent] == [1, 2, 3]
    assert before <= sent[0].client_time_us <= sent[1].client_time_us <= sent[2].client_time_us <= now_us()
    assert all(m.views == REQUEST.views and m.viewport == REQUEST.viewport for m in sent)
    assert poses.sent(2) == sent[1]
    poses._sequence = 0xFFFFFFFF  # the sequence wraps to 1, never 0 (the host's own first pose)
    assert poses.stamp(REQUEST).sequence == 1


def test_frames_meet_their_metadata_in_either_order_and_carry_their_pose() -> None:
    poses = PoseCorrelator()
    msg = poses.stamp(REQUEST)
    sent_at = msg.client_time_us / 1e6
    assert poses.on_metadata(_meta(0, msg.sequence)) is None  # metadata first: waits
    frame = poses.on_decoded(_decoded(0, sent_at + 0.020))
    assert frame is not None and frame.pose == msg
    assert frame.pose_to_receive_ms == pytest.approx(20.0, abs=0.01)
    assert poses.on_decoded(_decoded(3000, sent_at + 0.03)) is None  # video first: waits
    late = poses.on_metadata(_meta(3000, msg.sequence))
    assert late is not None and late.metadata is not None and late.metadata.pts == 3000
    # a picture whose metadata never comes is dropped when a later one arrives, and counted
    assert poses.on_decoded(_decoded(6000, sent_at)) is None
    assert poses.on_decoded(_decoded(9000, sent_at)) is None
    assert poses.unmatched == 1
    unknown = poses.on_metadata(_meta(9000, 77))  # a pose this client never sent
    assert unknown is not None and unknown.pose is None and unknown.pose_to_receive_ms is None


def test_pictures_off_by_a_lost_first_keyframe_are_reanchored_once_and_then_match() -> None:
    """The receiver rebased RTP timestamps to the first frame it got; that first keyframe (pts 0)
    was lost, so its pts are the host's minus the frame it did get. The correlator finds the one
    offset that matches, once, and from then on every picture meets its metadata."""
    poses = PoseCorrelator()
    msg = poses.stamp(REQUEST)
    host_pts = [0, 1497, 3012, 4488, 6011, 7503, 9020, 10494, 12010]  # irregular, as rendered
    for pts in host_pts:
        poses.on_metadata(_meta(pts, msg.sequence))
    base = host_pts[2]  # the first frame the receiver got whole
    frames = [poses.on_decoded(_decoded(pts - base, 1.0)) for pts in host_pts[2:]]
    # the first picture lands on the lost keyframe's metadata (pts 0), the next ones on nothing
    assert frames[1:4] == [None, None, None]
    assert poses.reanchored == 1
    assert [f.metadata.pts if f is not None and f.metadata else None for f in frames[-3:]] == host_pts[-3:]


def test_the_first_picture_meets_the_keyframe_whose_metadata_came_last() -> None:
    """The host's first keyframe (pts 0) never reached the decoder (its video lost, or come
    before the client's receiver was ready), but its metadata did; the receiver then started
    on the keyframe asked for next (pts 3012) and rebased it to 0. The first picture meets
    that keyframe's metadata, not the stale pts 0 (whose pose it does not show), and the
    pictures after it match with no reanchoring. With one keyframe, nothing moves."""
    import dataclasses

    poses = PoseCorrelator()
    msg = poses.stamp(REQUEST)
    host_pts = [0, 1497, 3012, 4488, 6011, 7503]
    for pts in host_pts:
        poses.on_metadata(dataclasses.replace(_meta(pts, pts), keyframe=pts in (0, 3012)))
    frames = [poses.on_decoded(_decoded(pts - 3012, 1.0)) for pts in host_pts[2:]]
    assert [f.metadata.pose_sequence if f and f.metadata else None for f in frames] == host_pts[2:]
    assert poses.reanchored == 0 and poses.unmatched == 0
    whole = PoseCorrelator()
    whole.on_metadata(dataclasses.replace(_meta(0, msg.sequence), keyframe=True))
    first = whole.on_decoded(_decoded(0, 1.0))
    assert first is not None and first.metadata is not None and first.metadata.pts == 0


def test_a_few_lost_metadata_do_not_move_correct_pts() -> None:
    poses = PoseCorrelator()
    msg = poses.stamp(REQUEST)
    host_pts = [0, 1497, 3012, 4488, 6011, 7503, 9020, 10494, 12010, 13492]
    lost = {3012, 4488, 6011, 7503}  # their metadata never comes
    for pts in host_pts:
        if pts not in lost:
            poses.on_metadata(_meta(pts, msg.sequence))
    frames = [poses.on_decoded(_decoded(pts, 1.0)) for pts in host_pts]
    assert poses.reanchored == 0
    assert [f.metadata.pts for f in frames if f is not None and f.metadata] == [
        p for p in host_pts if p not in lost]


def test_mailbox_next_wakes_on_its_loop_from_other_threads_and_on_wake() -> None:
    async def main() -> None:
        box: LatestMailbox[int] = LatestMailbox()
        asyncio.get_running_loop().call_later(0.01, box.put, 1)
        assert await box.next(5.0) == 1  # put on the same loop
        threading.Timer(0.01, box.put, args=(2,)).start()
        assert await box.next(5.0) == 2  # put from another thread
        asyncio.get_running_loop().call_later(0.01, box.wake)
        assert await box.next(5.0) is None  # woken without an item: the stream ended
        with pytest.raises(TimeoutError):
            await box.next(0.01)
        box.put(3)
        box.put(4)
        assert await box.next(0.0) == 4 and box.discarded == 1

    asyncio.run(main())


def test_mailbox_hands_what_it_discards_to_on_discard() -> None:
    dropped: list[int] = []
    box: LatestMailbox[int] = LatestMailbox(on_discard=dropped.append)
    for i in range(5):
        box.put(i)
    assert box.take() == 4 and dropped == [0, 1, 2, 3] and box.discarded == 4


def test_a_second_copy_of_metadata_is_ignored_and_a_lost_first_copy_is_made_good() -> None:
    """The host sends each frame's metadata before and after its video."""
    poses = PoseCorrelator()
    msg = poses.stamp(REQUEST)
    assert poses.on_metadata(_meta(0, msg.sequence)) is None
    assert poses.on_decoded(_decoded(0, 1.0)) is not None
    assert poses.on_metadata(_meta(0, msg.sequence)) is None  # the copy: no second frame
    assert 0 not in poses._metadata  # and not kept
    # the first copy lost: the picture waits for the second, which arrives after the video
    assert poses.on_decoded(_decoded(3000, 1.1)) is None
    frame = poses.on_metadata(_meta(3000, msg.sequence))
    assert frame is not None and frame.metadata is not None and frame.metadata.pts == 3000
    assert poses.unmatched == 0
