"""The root of farview's one exception tree, and the one error raised by every wire-format
decoder and encoder in :mod:`input`.

:class:`FarviewError` lives here, in the lowest layer, so that an argument the client refuses
before sending (a pose with NaN in it, a viewport of 0 pixels: :class:`ProtocolError`) is a
``FarviewError`` like everything else the client raises; ``farview.FarviewError`` and
``farview.client.errors.FarviewError`` are this class.
"""


class FarviewError(Exception):
    """Base of every farview error."""


class ProtocolError(FarviewError, ValueError):
    """A message could not be encoded or decoded: the text says exactly what was wrong with it
    (also a ``ValueError``: an argument out of its range)."""
