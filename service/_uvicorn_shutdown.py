"""The one uvicorn internal ``farview serve`` relies on: how a connection is told to shut down.

Pinned to ``uvicorn==0.55.0`` (``pyproject.toml``); ``tests/service/test_uvicorn_shutdown.py``
fails if what this relies on changes. What and why:

When the service stops, uvicorn asks every open connection to shut down
(``H11Protocol.shutdown``): an idle one is closed at once, with ``transport.close()``. Over TLS
that close sends the TLS ``close_notify`` alert and then waits for the client's own, up to
asyncio's TLS shutdown timeout (30 s). A client that keeps an idle keep-alive connection and
does not read it (Microsoft's ARR SDK, through ``requests``) never answers, so the connection
stayed open and ``farview serve`` waited out its 5-s graceful-shutdown limit on every stop,
then logged ``ERROR: Cancel 0 running task(s), timeout graceful shutdown exceeded``.

:class:`PromptShutdownH11` is uvicorn's h11 protocol with one change: an idle TLS connection
(``scheme`` https, set when it was made) is dropped (``transport.abort()``) instead of closed;
``connection_lost`` follows, as after a close. It had no request in flight,
so nothing is lost; its client opens a new connection for its next request, as it does after
any server restart. A connection with a request in flight is left to uvicorn: it ends after
its response, which tells the client so (``Connection: close``).
"""

from __future__ import annotations

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

PINNED_UVICORN = "0.55.0"


class PromptShutdownH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol; on shutdown an idle TLS connection is dropped, not kept
    waiting for its client's ``close_notify``."""

    def shutdown(self) -> None:
        if self.scheme == "https" and (self.cycle is None or self.cycle.response_complete):
            # Not uvicorn's close first: on a TLS transport already closing (past uvicorn's
            # keep-alive limit, its close_notify sent and unanswered) a second close() forgets
            # the TLS state, and the next call on the transport raised, failing the stop.
            self.transport.abort()
            return
        super().shutdown()


def http_protocol() -> type[H11Protocol] | str:
    """The ``http`` setting for ``uvicorn.Config``: :class:`PromptShutdownH11` on the pinned
    uvicorn, else uvicorn's own h11 protocol (a stop may then wait 5 s for an idle TLS
    client, as before)."""
    return PromptShutdownH11 if uvicorn.__version__ == PINNED_UVICORN else "h11"
