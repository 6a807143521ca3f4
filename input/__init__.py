"""Pure data and wire formats shared by host and client. No I/O; imports only numpy.

Importing this package must not pull in aiortc, PyAV, OpenGL or glfw (a test checks it).
"""

from input.control import ControlMessage, Error, Event, Request, Result
from input.errors import ProtocolError
from input.events import Action, EventKind, InputEvent
from input.frame_meta import FrameMetadata
from input.pose import Fov, Pose, PoseMessage, View

__all__ = [
    "Action",
    "ControlMessage",
    "Error",
    "Event",
    "EventKind",
    "Fov",
    "FrameMetadata",
    "InputEvent",
    "Pose",
    "PoseMessage",
    "ProtocolError",
    "Request",
    "Result",
    "View",
]
