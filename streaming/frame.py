"""A decoded video frame as the client API hands it out, with the pose it was rendered with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from farview.input.frame_meta import FrameMetadata
from farview.input.pose import PoseMessage


@dataclass(frozen=True)
class Frame:
    """One decoded frame: I420 planes plus what it was rendered from and how long it took."""

    y: np.ndarray
    """Luma plane, shape (height, width), uint8 (BT.601 limited range)."""
    u: np.ndarray
    """Cb plane, shape (height // 2, width // 2), uint8."""
    v: np.ndarray
    """Cr plane, shape (height // 2, width // 2), uint8."""
    pose: PoseMessage | None
    """The pose message this frame was rendered with (None if it could not be matched)."""
    metadata: FrameMetadata | None
    """The host's metadata for this frame (pts, pose sequence, stage durations)."""
    pose_to_receive_ms: float | None = None
    """Client clock: pose sampled → the frame's last packet arrived."""
    receive_to_decoded_ms: float | None = None
    """Client clock: last packet arrived → decoded planes ready."""
    received_at: float = 0.0
    """time.perf_counter() when the frame's last packet arrived."""
    waited: bool = False
    """Its last packet came with a retransmission (``received_at`` includes the NACK's round
    trip)."""

    @property
    def width(self) -> int:
        return int(self.y.shape[1])

    @property
    def height(self) -> int:
        return int(self.y.shape[0])

    def to_rgb(self) -> np.ndarray:
        """BT.601 limited-range YUV → RGB (H, W, 3) uint8, on the CPU (tests and screenshots)."""
        y = self.y.astype(np.float32) - 16.0
        u = np.repeat(np.repeat(self.u, 2, axis=0), 2, axis=1)[: self.height, : self.width].astype(np.float32) - 128.0
        v = np.repeat(np.repeat(self.v, 2, axis=0), 2, axis=1)[: self.height, : self.width].astype(np.float32) - 128.0
        r = 1.164 * y + 1.596 * v
        g = 1.164 * y - 0.392 * u - 0.813 * v
        b = 1.164 * y + 2.017 * u
        rgb: np.ndarray = np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
        return rgb
