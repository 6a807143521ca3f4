"""A rendering session as the client sees it: :class:`RenderingSession` (sync client) and
:class:`AsyncRenderingSession` (async client), with the properties the service last reported.

Both mirror ARR's RenderingSession: ``session_uuid``, ``properties``/``get_properties()``,
``renew()``, ``stop()``, ``wait_until_ready()``, ``connect()``. ``host_url`` is where the
session's render host answers signaling; ``access_token()`` gets (and caches) the bearer token
the host accepts. For code that must work with either kind, ``await access_token_async()``.

Not thread-safe; one session object per task/thread.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from farview.client.errors import (
    AlreadyConnectedError,
    ModelLoadError,
    SessionStateError,
    TooManyRequestsError,
)
from farview.input.launch import MODEL_FAILED, MODEL_LOADING, ModelStatus

if TYPE_CHECKING:
    from farview.client.connection import RenderingConnection
    from farview.client.rest import AsyncRemoteRenderingClient, RemoteRenderingClient

STARTING, READY, STOPPED, EXPIRED, ERROR = "Starting", "Ready", "Stopped", "Expired", "Error"
TERMINAL = frozenset({STOPPED, EXPIRED, ERROR})
RENEW_STEP_MINUTES = 15
"""``renew()`` without an argument extends the lease by this many minutes."""


@dataclass(frozen=True, kw_only=True)

class SessionProperties:
    """One session as ARR 2021-01-01 describes it (snake_case)."""

    id: str
    status: str
    """Starting, Ready, Stopped, Expired or Error."""
    size: str
    max_lease_time_minutes: int
    elapsed_time_minutes: int
    hostname: str | None
    handshake_port: int | None
    arr_inspector_port: int | None
    teraflops: float
    creation_time: str
    error: dict[str, str] | None
    """``{"code", "message"}`` when the session failed."""
    model_status: tuple[ModelStatus, ...] = ()
    """farview extension: each start-up model's state (Loading, Loaded, Failed with the
    loader's code and message)."""

    @property
    def failed_models(self) -> tuple[ModelStatus, ...]:
        """The start-up models that failed to load."""
        return tuple(m for m in self.model_status if m.status == MODEL_FAILED)

    @property
    def models_loading(self) -> bool:
        return any(m.status == MODEL_LOADING for m in self.model_status)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> SessionProperties:
        return cls(
            id=str(raw["id"]), status=str(raw["status"]), size=str(raw.get("size", "")),
            max_lease_time_minutes=int(raw.get("maxLeaseTimeMinutes") or 0),
            elapsed_time_minutes=int(raw.get("elapsedTimeMinutes") or 0),
            hostname=raw.get("hostname"), handshake_port=raw.get("handshakePort"),
            arr_inspector_port=raw.get("arrInspectorPort"),
            teraflops=float(raw.get("teraflops") or 0.0),
            creation_time=str(raw.get("creationTime", "")), error=raw.get("error"),
            model_status=tuple(ModelStatus.from_wire(m) for m in raw.get("modelStatus") or ()))

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "size": self.size,
                "maxLeaseTimeMinutes": self.max_lease_time_minutes,
                "elapsedTimeMinutes": self.elapsed_time_minutes, "hostname": self.hostname,
                "handshakePort": self.handshake_port, "arrInspectorPort": self.arr_inspector_port,
                "teraflops": self.teraflops, "creationTime": self.creation_time,
                "error": self.error, "modelStatus": [m.to_wire() for m in self.model_status]}

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def host_url(self) -> str | None:
        return self.endpoint_url()

    def endpoint_url(self, scheme: str = "http") -> str | None:
        """``{scheme}://{hostname}:{handshakePort}``, or None while the session has none
        (``https`` for a service reached over https: the properties do not say)."""
        if not self.hostname or not self.handshake_port:
            return None
        return f"{scheme}://{self.hostname}:{self.handshake_port}"


def check_models(props: SessionProperties) -> None:
    """Raise :class:`ModelLoadError` naming every start-up model that failed, with the loader's
    message."""
    failed = props.failed_models
    if failed:
        raise ModelLoadError("; ".join(f"{m.source} failed to load ({m.code}): {m.message}"
                                       for m in failed))


def not_ready_error(props: SessionProperties) -> SessionStateError:
    """The error for a session that ended; says what to do."""
    msg = f"session {props.id} is {props.status}; create a new session"
    if props.error:
        msg += f" (error {props.error.get('code')}: {props.error.get('message')})"
    return SessionStateError(msg)


def _models_settled(props: SessionProperties, deadline: float, timeout: float) -> bool:
    """One step of ``wait_for_models``: True when every start-up model is loaded; raises
    :class:`ModelLoadError` when one failed or ``deadline`` passed, and the not-ready error
    when the session ended."""
    check_models(props)
    if not props.models_loading:
        return True
    if props.is_terminal:
        raise not_ready_error(props)
    if time.monotonic() >= deadline:
        raise ModelLoadError(f"session {props.id}'s models are still loading after "
                             f"{timeout:g}s; wait longer or look at the host's log")
    return False



class _SessionBase:
    def __init__(self, properties: SessionProperties) -> None:
        self._properties = properties
        self._connection: RenderingConnection | None = None

    async def connect(self, **kw: Any) -> RenderingConnection:
        """Connect to the session's render host and stream (see :mod:`client.connection`).

        Keyword arguments go to :func:`client.connection.connect_to_host` (``viewport``,
        ``on_frame``, ``timeout``...). Raises :class:`AlreadyConnectedError` while this session
        object has a live connection, :class:`OtherClientConnectedError` when another client
        holds the host, :class:`SessionStateError` when the session is not Ready (Starting:
        wait; Stopped, Expired, Error: create a new one)."""
        from farview.client.connection import connect_session

        if self._connection is not None and self._connection.is_connected:
            raise AlreadyConnectedError(f"session {self.id} is already connected; "
                                        "disconnect() first")
        self._connection = await connect_session(self, **kw)
        return self._connection

    async def disconnect(self) -> None:
        """Close the live connection, if any; the host keeps the scene for the next one."""
        if self._connection is not None:
            await self._connection.close()

    @property
    def connection(self) -> RenderingConnection | None:
        """The live (or last) connection made by :meth:`connect`."""
        return self._connection

    @property
    def is_connected(self) -> bool:
        return self._connection is not None and self._connection.is_connected

    @property
    def connection_status(self) -> str:
        """``Connected`` or ``Disconnected`` (ARR's ConnectionStatus names)."""
        return "Connected" if self.is_connected else "Disconnected"

    @property
    def session_uuid(self) -> str:
        """The session id (ARR's name)."""
        return self._properties.id

    @property
    def id(self) -> str:
        return self._properties.id

    @property
    def properties(self) -> SessionProperties:
        """The properties last fetched (see ``get_properties()`` to refresh)."""
        return self._properties

    @property
    def status(self) -> str:
        return self._properties.status

    @property
    def whep_url(self) -> str:
        """The session's WHEP resource at the service (its one public endpoint)."""
        client: Any = getattr(self, "client")  # noqa: B009 (set by the subclasses)
        return f"{client.endpoint}{client._path(self.id, '/whep')}"

    @property
    def scene_url(self) -> str:
        """Where a model is loaded into the session's scene without a stream."""
        client: Any = getattr(self, "client")  # noqa: B009
        return f"{client.endpoint}{client._path(self.id, '/scene/models')}"

    def upload_url(self, name: str) -> str:
        """Where a ``.glb`` file named ``name`` is uploaded into the session's scene
        (:func:`farview.client.scene.upload_model_http`)."""
        client: Any = getattr(self, "client")  # noqa: B009
        return f"{client.endpoint}{client._path(self.id, '/scene/upload/' + quote(name, safe=''))}"

    @property
    def verify(self) -> Any:
        """What the session's REST client trusts for https (also used for signaling)."""
        return getattr(self, "client")._verify  # noqa: B009

    @property
    def host_url(self) -> str:
        """``{scheme}://{hostname}:{handshakePort}`` (the service: every session's public
        endpoint; https when the client reaches the service so); raises while the session has
        none yet."""
        client: Any = getattr(self, "client")  # noqa: B009
        url = self._properties.endpoint_url(str(client.endpoint).split(":", 1)[0])
        if url is None:
            raise SessionStateError(f"session {self.id} is {self.status} and has no render host "
                                    "address yet; wait_until_ready() first")
        return url

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.id} {self.status}>"


class RenderingSession(_SessionBase):
    """A session of a :class:`~client.rest.RemoteRenderingClient` (blocking calls)."""

    def __init__(self, client: RemoteRenderingClient, properties: SessionProperties) -> None:
        super().__init__(properties)
        self.client = client

    def get_properties(self) -> SessionProperties:
        self._properties = self.client.get_session(self.id).properties
        return self._properties

    refresh = get_properties

    def renew(self, max_lease_time_minutes: int | None = None) -> SessionProperties:
        """Set a longer lease (default: RENEW_STEP_MINUTES more than now)."""
        lease = (self._properties.max_lease_time_minutes + RENEW_STEP_MINUTES
                 if max_lease_time_minutes is None else max_lease_time_minutes)  # (0 is refused)
        self._properties = self.client.update_session(
            self.id, max_lease_time_minutes=lease).properties
        return self._properties

    update = renew

    def stop(self) -> None:
        self.client.stop_session(self.id)
        self.get_properties()

    def wait_until_ready(self, timeout: float = 120.0, *, poll_interval: float = 0.25
                         ) -> SessionProperties:
        """Poll until Ready; raise :class:`SessionStateError` if it ends or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                props = self.get_properties()
            except TooManyRequestsError as exc:  # polling too fast for the account: back off
                time.sleep(min(exc.retry_after, max(0.0, deadline - time.monotonic())))
                props = self._properties
            if props.status == READY:
                return props
            if props.is_terminal:
                raise not_ready_error(props)
            if time.monotonic() >= deadline:
                raise SessionStateError(f"session {self.id} is still {props.status} after "
                                        f"{timeout:g}s; wait longer or stop it")
            time.sleep(poll_interval)

    def wait_for_models(self, timeout: float = 300.0, *, poll_interval: float = 0.1
                        ) -> SessionProperties:
        """Wait until the session's start-up models are loaded; raise :class:`ModelLoadError`
        with the loader's message when one failed (the session streams an empty scene then)."""
        deadline = time.monotonic() + timeout
        while True:
            props = self.get_properties()
            if _models_settled(props, deadline, timeout):
                return props
            time.sleep(poll_interval)

    def access_token(self) -> str:
        """A bearer token for the render host (from the token exchange; cached until near exp)."""
        return self.client.get_access_token()

    async def access_token_async(self) -> str:
        return await asyncio.to_thread(self.client.get_access_token)



class AsyncRenderingSession(_SessionBase):
    """A session of an :class:`~client.rest.AsyncRemoteRenderingClient` (awaitable calls)."""

    def __init__(self, client: AsyncRemoteRenderingClient, properties: SessionProperties
                 ) -> None:
        super().__init__(properties)
        self.client = client

    async def get_properties(self) -> SessionProperties:
        self._properties = (await self.client.get_session(self.id)).properties
        return self._properties

    refresh = get_properties

    async def renew(self, max_lease_time_minutes: int | None = None) -> SessionProperties:
        lease = (self._properties.max_lease_time_minutes + RENEW_STEP_MINUTES
                 if max_lease_time_minutes is None else max_lease_time_minutes)  # (0 is refused)
        self._properties = (await self.client.update_session(
            self.id, max_lease_time_minutes=lease)).properties
        return self._properties

    update = renew

    async def stop(self) -> None:
        await self.client.stop_session(self.id)
        await self.get_properties()

    async def wait_until_ready(self, timeout: float = 120.0, *, poll_interval: float = 0.25
                               ) -> SessionProperties:
        deadline = time.monotonic() + timeout
        while True:
            try:
                props = await self.get_properties()
            except TooManyRequestsError as exc:  # polling too fast for the account: back off
                await asyncio.sleep(min(exc.retry_after, max(0.0, deadline - time.monotonic())))
                props = self._properties
            if props.status == READY:
                return props
            if props.is_terminal:
                raise not_ready_error(props)
            if time.monotonic() >= deadline:
                raise SessionStateError(f"session {self.id} is still {props.status} after "
                                        f"{timeout:g}s; wait longer or stop it")
            await asyncio.sleep(poll_interval)

    async def wait_for_models(self, timeout: float = 300.0, *, poll_interval: float = 0.1
                              ) -> SessionProperties:
        """As :meth:`RenderingSession.wait_for_models`."""
        deadline = time.monotonic() + timeout
        while True:
            props = await self.get_properties()
            if _models_settled(props, deadline, timeout):
                return props
            await asyncio.sleep(poll_interval)

    async def access_token(self) -> str:
        return await self.client.get_access_token()

    access_token_async = access_token

