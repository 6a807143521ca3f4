"""The one helper that runs a stream's asyncio loop on a worker thread.

A window (GLFW, GL) owns the main thread, and so does a benchmark's display loop; the
:class:`~farview.client.connection.RenderingConnection` lives on an asyncio loop that a
:class:`StreamThread` runs on a daemon thread. Hand-offs are explicit: :meth:`StreamThread.call`
(run a coroutine there and wait for its result), :meth:`~StreamThread.submit` (run one, get a
``concurrent.futures.Future``), :meth:`~StreamThread.call_soon` (a plain function, no result).
Decoded frames come back through a :class:`~farview.streaming.mailbox.LatestMailbox`.

:meth:`~StreamThread.stop` cancels what is left on the loop (aiortc's transport monitors
included), stops it and joins the thread: nothing outlives it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class StreamThread:
    """An asyncio loop on a daemon thread, started by :meth:`start` (or the constructor)."""

    def __init__(self, name: str = "stream", *, start: bool = True) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        if start:
            self.start()

    def start(self) -> None:
        if not self._thread.is_alive():
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        self.loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the loop; its future is thread-safe."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and wait (up to ``timeout`` seconds) for its result."""
        return self.submit(coro).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop at its next iteration (no result, no wait)."""
        self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 5.0, *, before: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run ``before`` (e.g. closing the connection), cancel every task left, stop the loop
        and join the thread."""

        async def finish() -> None:
            if before is not None:
                try:
                    await before
                except Exception:
                    log.debug("closing the stream failed", exc_info=True)
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if not self._thread.is_alive():
            if before is not None:
                before.close()
            return
        with contextlib.suppress(Exception):
            self.call(finish(), timeout)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)
