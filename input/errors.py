"""The one error raised by every wire-format decoder in :mod:`input`."""


class ProtocolError(ValueError):
    """A message could not be decoded: the text says exactly what was wrong with it."""
