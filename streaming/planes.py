"""numpy views of PyAV frame planes (no copies): the one place that knows about line padding."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt


def plane_array(plane: av.video.plane.VideoPlane, width: int, height: int,
                channels: int = 1) -> npt.NDArray[np.uint8]:
    """A writable (height, width) or (height, width, channels) view of a frame plane, without
    the padding at the end of each line."""
    buf: npt.NDArray[np.uint8] = np.frombuffer(plane, dtype=np.uint8)  # type: ignore[call-overload]
    rows = buf[: plane.line_size * height].reshape(height, plane.line_size)
    view = rows[:, : width * channels]
    return view.reshape(height, width, channels) if channels > 1 else view


def yuv420_planes(
    frame: av.VideoFrame,
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """The Y, U, V planes of a ``yuv420p`` frame as writable arrays sharing its memory."""
    if frame.format.name != "yuv420p":
        raise ValueError(f"expected a yuv420p frame, got {frame.format.name}")
    w, h = frame.width, frame.height
    p = frame.planes
    return (plane_array(p[0], w, h), plane_array(p[1], w // 2, h // 2),
            plane_array(p[2], w // 2, h // 2))
