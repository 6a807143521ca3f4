"""Where models come from: the host's model store (names), local paths, and http(s) URLs.

Owns source resolution and fetching, and the load budgets:

- a **name** (``sample_engine``, ``Duck.glb``) is looked up in the store: the shipped samples in
  ``assets/`` and the folder in ``FARVIEW_MODEL_DIR``. Names are plain file names (letters,
  digits, ``. _ -``); a name can never reach outside the store's folders.
- a **local path** on the host: anything with a ``/`` (or ``~``), or an absolute path.
- an **http(s) URL**: fetched with httpx, streamed, aborted at the size budget or the timeout.

Budgets come from the environment (read once when the host starts; see :class:`LoadBudgets`).
:class:`SourceError` carries a control error code (``NotFound``, ``InvalidArgument``,
``FetchFailed``, ``Timeout``, ``LimitExceeded``) and a message that says what to do.

Concurrency: :func:`fetch_url` is a coroutine on the host's event loop; the rest is pure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import time
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import httpx

from farview.assets import ASSETS_DIR
from farview.host.errors import SourceError
from farview.host.gltf import DEFAULT_MAX_DECODED_BYTES, DEFAULT_MAX_TRIANGLES
from farview.input.launch import SCENE_TRIANGLES

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".glb", ".gltf")
DEFAULT_MAX_MODEL_BYTES = 256 << 20
"""Default size budget of one model (256 MiB)."""
DEFAULT_FETCH_TIMEOUT = 60.0
"""Default limit, in seconds, for fetching one model over http(s)."""
ENV_MODEL_DIR = "FARVIEW_MODEL_DIR"
ENV_MAX_TRIANGLES = "FARVIEW_MAX_TRIANGLES"
ENV_MAX_MODEL_BYTES = "FARVIEW_MAX_MODEL_BYTES"
ENV_FETCH_TIMEOUT = "FARVIEW_FETCH_TIMEOUT"
ENV_MAX_DECODED_BYTES = "FARVIEW_MAX_DECODED_BYTES"

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

SourceKind = Literal["name", "path", "url"]
ProgressCallback = Callable[[float | None, int], None]
"""Called with (fraction 0..1 or None when the size is unknown, bytes so far)."""


@dataclass(frozen=True, kw_only=True)
class LoadBudgets:
    """Limits for one model. Environment: ``FARVIEW_MAX_TRIANGLES``, ``FARVIEW_MAX_MODEL_BYTES``,
    ``FARVIEW_MAX_DECODED_BYTES``, ``FARVIEW_FETCH_TIMEOUT`` (seconds)."""

    max_triangles: int = DEFAULT_MAX_TRIANGLES
    """Triangles of one model, counted per instancing node."""
    max_bytes: int = DEFAULT_MAX_MODEL_BYTES
    """Bytes of one model file (plus external buffers), and of one download."""
    fetch_timeout: float = DEFAULT_FETCH_TIMEOUT
    """Seconds for a whole http(s) download."""
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    """Bytes of one model's accessors and images once decoded (checked before allocating)."""

    def __post_init__(self) -> None:
        if self.max_triangles <= 0 or self.max_bytes <= 0 or self.max_decoded_bytes <= 0:
            raise ValueError(f"model budgets must be positive, got max_triangles="
                             f"{self.max_triangles} max_bytes={self.max_bytes} "
                             f"max_decoded_bytes={self.max_decoded_bytes}")
        if not self.fetch_timeout > 0:
            raise ValueError(f"fetch timeout must be positive, got {self.fetch_timeout}")

    @classmethod
    def for_size(cls, size: str, env: Mapping[str, str] | None = None,
                 memory_bytes: int | None = None) -> LoadBudgets:
        """The budgets of one model in a session of ``size`` (ARR's sizes): ``Standard``
        takes models up to its scene limit of 20 million triangles (1 GiB files, 2 GiB
        decoded); ``Premium`` is bounded by the machine: a triangle for every 100 bytes of
        its memory (``memory_bytes``, default this machine's), files up to a quarter of it,
        decoded data up to half. The environment's ``FARVIEW_MAX_*`` settings, when set,
        override each."""
        env = os.environ if env is None else env
        if size == "Premium":
            if memory_bytes is None:
                import psutil

                memory_bytes = int(psutil.virtual_memory().total)
            defaults = {"t": memory_bytes // 100, "b": memory_bytes // 4, "d": memory_bytes // 2}
        elif size == "Standard":
            defaults = {"t": SCENE_TRIANGLES["Standard"] or 0, "b": 1 << 30, "d": 2 << 30}
        else:
            raise ValueError(f"unknown session size {size!r}")
        base = cls.from_env({})
        explicit = cls.from_env(env)
        return replace(
            explicit,
            max_triangles=explicit.max_triangles if env.get(ENV_MAX_TRIANGLES) else defaults["t"],
            max_bytes=explicit.max_bytes if env.get(ENV_MAX_MODEL_BYTES) else defaults["b"],
            max_decoded_bytes=explicit.max_decoded_bytes if env.get(ENV_MAX_DECODED_BYTES)
            else max(defaults["d"], base.max_decoded_bytes))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoadBudgets:
        env = os.environ if env is None else env

        def number(name: str, kind: type[int] | type[float], default: float) -> float:
            raw = env.get(name)
            if raw is None or raw == "":
                return default
            try:
                return kind(raw)
            except ValueError:
                raise ValueError(f"{name}={raw!r} is not a number") from None

        return cls(max_triangles=int(number(ENV_MAX_TRIANGLES, int, DEFAULT_MAX_TRIANGLES)),
                   max_bytes=int(number(ENV_MAX_MODEL_BYTES, int, DEFAULT_MAX_MODEL_BYTES)),
                   fetch_timeout=float(number(ENV_FETCH_TIMEOUT, float, DEFAULT_FETCH_TIMEOUT)),
                   max_decoded_bytes=int(number(ENV_MAX_DECODED_BYTES, int, DEFAULT_MAX_DECODED_BYTES)))


def classify(source: str) -> SourceKind:
    """``url`` for http(s)://, ``path`` for anything path-like (a ``file://`` URI too: a
    conversion's ``outputAssetUri``), else ``name``."""
    if "\0" in source:  # (a NUL reached the file system calls: 500, ValueError)
        raise SourceError("InvalidArgument", f"model source {source[:200]!r} contains a NUL "
                          "character; give a model store name, a path or a URL")
    lowered = source.lower()
    if lowered.startswith(("http://", "https://")):
        return "url"
    if lowered.startswith("file://"):
        return "path"
    if "://" in source:
        raise SourceError("InvalidArgument", f"unsupported model URL scheme in {source!r}; "
                          "use http(s)://, file:///path on the host, a local path on the "
                          "host, or a model store name")
    if "/" in source or "\\" in source or source.startswith("~") or os.path.isabs(source):
        return "path"
    return "name"


class ModelStore:
    """The named models a host can load: shipped samples plus an optional configured folder."""

    def __init__(self, folders: tuple[Path, ...]) -> None:
        self.folders = tuple(f.resolve() for f in folders)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ModelStore:
        env = os.environ if env is None else env
        folders = [ASSETS_DIR]
        configured = env.get(ENV_MODEL_DIR)
        if configured:
            folder = Path(configured).expanduser()
            if not folder.is_dir():
                log.warning("%s=%s is not a folder; only the shipped samples are available",
                            ENV_MODEL_DIR, configured)
            else:
                folders.append(folder)
        return cls(tuple(folders))

    def names(self) -> list[str]:
        """Every loadable name (file names without their suffix), sorted."""
        out: set[str] = set()
        for folder in self.folders:
            if folder.is_dir():
                out.update(p.stem for p in folder.iterdir()
                           if p.suffix.lower() in MODEL_SUFFIXES and _NAME.fullmatch(p.name))
        return sorted(out)

    def resolve(self, name: str, *, paths_allowed: bool = True) -> Path:
        """The file for ``name`` (with or without ``.glb``/``.gltf``); later folders win.
        ``paths_allowed``: whether the message may suggest a path on the host instead."""
        if not _NAME.fullmatch(name) or ".." in name:
            raise SourceError("InvalidArgument", f"model name {name!r} is not a plain file name "
                              "(letters, digits, '.', '_', '-'); give a path or URL instead")
        candidates = [name] if name.lower().endswith(MODEL_SUFFIXES) else [
            name + s for s in MODEL_SUFFIXES]
        for folder in reversed(self.folders):
            for candidate in candidates:
                path = (folder / candidate).resolve()
                # resolve() follows links: a link out of the store is refused too
                if path.is_file() and path.is_relative_to(folder):
                    return path
        known = ", ".join(self.names()) or "none"
        instead = (f"set {ENV_MODEL_DIR} or give a path or URL" if paths_allowed else
                   f"ask the service's operator to add it to the model store ({ENV_MODEL_DIR} "
                   "on the host), or give an allowed URL")
        raise SourceError("NotFound", f"no model named {name!r} in the model store "
                          f"(known: {known}); {instead}")


def host_path(source: str) -> Path:
    """The path on the host a path source (or a ``file://`` URI) names; it may not exist."""
    if source.lower().startswith("file://"):
        parsed = urllib.parse.urlparse(source)
        if parsed.netloc not in ("", "localhost"):
            raise SourceError("InvalidArgument", f"{source!r} names another machine; a file:// "
                              "URI names a file on the render host (file:///path)")
        path = urllib.parse.unquote(parsed.path)
        if "\0" in path:  # (%00: a ValueError from the file system calls, answered 500)
            raise SourceError("InvalidArgument", f"{source[:200]!r} names a path with a NUL "
                              "character; give the file's own path")
        return Path(path)
    return Path(source).expanduser()


def resolve_path(source: str) -> Path:
    """A local path on the host (or a ``file://`` URI of one) that must be an existing file."""
    path = host_path(source)
    if path.exists() and not path.is_file():  # (a folder or a device was "no model file")
        what = "a folder" if path.is_dir() else "not a regular file"
        raise SourceError("NotFound", f"{source!r} on the host is {what}; give the path of a "
                          "model file (.glb or .gltf)")
    if not path.is_file():
        raise SourceError("NotFound", f"no model file at {source!r} on the host; check the "
                          "path (it is resolved on the render host, not on the client)")
    return path.resolve()


@dataclass(frozen=True)
class SourcePolicy:
    """Where models may come from. ``store_only``: names in the model store, http(s) URLs
    whose host is in ``url_hosts`` (redirects too), and files in ``folders`` (the session's
    account's conversion storage); no other host path."""

    store_only: bool = False
    url_hosts: frozenset[str] = frozenset()
    folders: tuple[Path, ...] = ()

    def check(self, source: str, kind: SourceKind) -> None:
        """Raise :class:`SourceError` (``Forbidden``) when the policy refuses ``source``."""
        if not self.store_only:
            return
        if kind == "path":
            if self.folders:
                # resolve() follows links and "..": the file itself must be in a folder
                with contextlib.suppress(SourceError, OSError, RuntimeError):
                    path = host_path(source).resolve()
                    if any(path.is_relative_to(f.resolve()) for f in self.folders):
                        return
            raise SourceError("Forbidden", f"{source!r} is a path on the host, and this service "
                              "loads models only from its model store, allowed URLs and this "
                              "account's conversion storage; give a model store name or a "
                              "conversion's outputAssetUri")
        if kind == "url":
            self.check_url(source)

    def check_url(self, url: str) -> None:
        if not self.store_only:
            return
        host = (httpx.URL(url).host or "").lower()
        if host not in self.url_hosts:
            allowed = ", ".join(sorted(self.url_hosts)) or "none"
            raise SourceError("Forbidden", f"this service loads model URLs only from allowed "
                              f"hosts ({allowed}), not from {host or url!r}; ask its operator to "
                              "allow the host, or use a model store name")


MAX_REDIRECTS = 5


async def fetch_url(url: str, budgets: LoadBudgets, progress: ProgressCallback | None = None,
                    *, transport: httpx.AsyncBaseTransport | None = None,
                    policy: SourcePolicy = SourcePolicy()) -> bytes:
    """Download ``url`` (streamed), refusing more than ``budgets.max_bytes`` or taking longer
    than ``budgets.fetch_timeout``; every redirect target must pass ``policy`` too.
    ``progress`` is called at most ~10 times a second."""
    limit = budgets.max_bytes
    try:
        return await asyncio.wait_for(_fetch(url, limit, budgets.fetch_timeout, progress,
                                             transport, policy), budgets.fetch_timeout)
    except (TimeoutError, httpx.TimeoutException):
        raise SourceError("Timeout", f"fetching {url} took longer than the "
                          f"{budgets.fetch_timeout:g} s fetch timeout ({ENV_FETCH_TIMEOUT}); "
                          "check the server or raise the timeout") from None
    except httpx.HTTPError as exc:
        raise SourceError("FetchFailed", f"could not fetch {url}: {type(exc).__name__}: "
                          f"{exc}") from None


class _BoundedDecoder:
    """Undoes one ``Content-Encoding`` (gzip or deflate) while counting what it produces: a
    few hundred compressed bytes can expand to gigabytes (a decompression bomb), so no call
    produces more than what is left of the budget, and passing it stops at once."""

    def __init__(self, coding: str, limit: int, url: str) -> None:
        self._limit = limit
        self._url = url
        self.produced = 0
        if coding in ("gzip", "x-gzip"):
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._raw_deflate_fallback = False
        else:  # deflate: zlib-wrapped as the RFC says, or raw as some servers send it
            self._zlib = zlib.decompressobj(zlib.MAX_WBITS)
            self._raw_deflate_fallback = True

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            room = self._limit - self.produced + 1  # one byte more than the budget: detects it
            try:
                piece = self._zlib.decompress(data, room)
            except zlib.error:
                if not self._raw_deflate_fallback or self.produced:
                    raise SourceError("FetchFailed", f"the compressed body of {self._url} is "
                                      "corrupt; check the server") from None
                self._raw_deflate_fallback = False
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            self._raw_deflate_fallback = False
            self.produced += len(piece)
            if self.produced > self._limit:
                raise SourceError("LimitExceeded", f"model at {self._url} decompresses to more "
                                  f"than the size budget of {self._limit} bytes "
                                  f"({ENV_MAX_MODEL_BYTES})")
            out.append(piece)
            data = self._zlib.unconsumed_tail
        return b"".join(out)


def _content_coding(url: str, header: str | None) -> str | None:
    """The one content coding to undo (None: identity). Stacked codings (``gzip, gzip``) and
    codings farview does not decode are refused."""
    codings = [c.strip().lower() for c in (header or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if len(codings) > 1:
        raise SourceError("FetchFailed", f"{url} is sent with stacked content encodings "
                          f"({', '.join(codings)}); farview accepts one layer of gzip or deflate")
    if codings and codings[0] not in ("gzip", "x-gzip", "deflate"):
        raise SourceError("FetchFailed", f"{url} is sent with the content encoding "
                          f"{codings[0]!r}; farview accepts gzip, deflate or none")
    return codings[0] if codings else None


async def _fetch(url: str, limit: int, timeout: float, progress: ProgressCallback | None,
                 transport: httpx.AsyncBaseTransport | None, policy: SourcePolicy) -> bytes:
    # the body is read raw and decoded here, bounded (httpx would undo every layer first);
    # no proxies from the environment; redirects followed by hand, each checked by the policy
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, transport=transport,
                                 trust_env=False,
                                 headers={"Accept-Encoding": "gzip, deflate"}) as client:
        for _ in range(MAX_REDIRECTS + 1):
            policy.check_url(url)
            async with client.stream("GET", url) as response:
                if response.is_redirect and "location" in response.headers:
                    url = str(response.url.join(response.headers["location"]))
                    continue
                return await _read(url, response, limit, progress)
        raise SourceError("FetchFailed", f"{url} redirects more than {MAX_REDIRECTS} times")


async def _read(url: str, response: httpx.Response, limit: int,
                progress: ProgressCallback | None) -> bytes:
    if response.status_code != 200:
        raise SourceError("FetchFailed", f"fetching {url} failed: HTTP "
                          f"{response.status_code} {response.reason_phrase}; check the URL")
    coding = _content_coding(url, response.headers.get("content-encoding"))
    decoder = None if coding is None else _BoundedDecoder(coding, limit, url)
    total: int | None = None
    length = response.headers.get("content-length")
    if length is not None and length.isdigit():
        total = int(length)
        if total > limit:
            raise SourceError("LimitExceeded", f"model at {url} is {total} bytes, over the "
                              f"size budget of {limit} bytes ({ENV_MAX_MODEL_BYTES})")
    chunks: list[bytes] = []
    received = 0  # bytes on the wire (what Content-Length counts)
    size = 0  # bytes of the model
    last_report = 0.0
    async for raw in response.aiter_raw():
        received += len(raw)
        chunk = raw if decoder is None else decoder.feed(raw)
        size += len(chunk)
        if received > limit or size > limit:
            raise SourceError("LimitExceeded", f"model at {url} is over the size budget "
                              f"of {limit} bytes ({ENV_MAX_MODEL_BYTES})")
        chunks.append(chunk)
        now = time.monotonic()
        if progress is not None and now - last_report >= 0.1:
            last_report = now
            progress(min(received / total, 1.0) if total else None, size)
    if total is not None and received < total:
        raise SourceError("FetchFailed", f"download of {url} ended after {received} of "
                          f"{total} bytes; try again")
    return b"".join(chunks)
