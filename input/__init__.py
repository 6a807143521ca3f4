"""Pure data and wire formats shared by host and client. No I/O; imports only numpy.

Importing this package must not pull in aiortc, PyAV, OpenGL or glfw (a test checks it).
"""

from farview.input.control import ControlMessage, Error, Event, Request, Result
from farview.input.errors import ProtocolError
from farview.input.events import Action, EventKind, InputEvent
from farview.input.frame_meta import FrameMetadata
from farview.input.pose import Fov, Pose, PoseMessage, PoseRequest, View

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
    "PoseRequest",
    "ProtocolError",
    "Request",
    "Result",
    "View",
]
