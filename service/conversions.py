"""ARR's conversion API, self-hosted: conversion records, their storage locations, and the
child processes that run them.

A conversion turns one model file into one ``.glb`` (:mod:`host.convert`). ARR read from and
wrote to Azure blob containers; here a *storage container* is a folder in the account's own
storage folder, ``<storage root>/<account id>`` (the root is ``<data-dir>/storage`` unless
``FARVIEW_STORAGE_ROOT`` says otherwise; :func:`account_storage`), named by its URI:
``file:///abs/path`` (inside the account's folder) or a name relative to it. Nothing outside
it is read or written (one account neither reads another's inputs nor overwrites its
outputs), the input's path may not leave its container, and the output may not be the input.
As in ARR, the input's ``relativeInputAssetPath`` starts at its ``blobPrefix`` (a folder in the
container).

Either container may also be an ``http(s)://`` URL (an Azure blob container with its SAS
token, say). The input is then downloaded to a private temporary folder and converted from
there: every blob under ``blobPrefix`` when the container answers Azure's List Blobs (as ARR
did: an OBJ's ``.mtl`` and a model's textures come along; at most :data:`MAX_INPUT_FILES`
files), else the asset's one file (from a plain web server, the files it refers to are not
fetched); at most :data:`MAX_DOWNLOAD_BYTES` in all, each file within
:data:`DOWNLOAD_TIMEOUT_S`. The output is converted into such a folder too and then uploaded
with one ``PUT`` (``x-ms-blob-type: BlockBlob``, as Azure's Put Blob wants; within
:data:`UPLOAD_TIMEOUT_S`). A URL's query (a SAS token is a secret) never appears in messages or
logs. Where the service's model sources are ``store`` (it binds a non-loopback address, say),
http(s) storage must be on one of the hosts model URLs may use too (``--model-url-host``): the
service does not reach other machines for its users.

Records live in the service's SQLite file (table ``conversions``), per account, and are kept
30 days after they end, as sessions are. Status: ``NotStarted`` → ``Running`` → ``Succeeded``,
``Failed`` or ``Cancelled`` (a conversion running when the service stopped is marked
``Failed``, saying so, when the service starts again).

Each conversion runs in its own process (``python -m farview.host.convert``) with a memory
limit (``RLIMIT_AS``, :data:`MEMORY_LIMIT_BYTES` or half the machine's memory) and a time limit
(:data:`TIMEOUT_SECONDS`), at most :data:`MAX_RUNNING` at once; the output appears only when
complete, followed by ARR's ``<name>.info.json`` (the converter's, ``--info``) and
``<name>.result.json`` (the service's) beside it. ARR's ``<stem>.ConversionSettings.json``
beside the input is read by the converter; from a plain web server it is fetched beside the
asset.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import json
import logging
import os
import re
import resource
import signal
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from farview.input.launch import CONVERT_MODULE, parse_conversion_progress, python_module
from farview.service.store import open_db, transaction

log = logging.getLogger(__name__)

NOT_STARTED, RUNNING, SUCCEEDED, FAILED, CANCELLED = (
    "NotStarted", "Running", "Succeeded", "Failed", "Cancelled")
TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELLED})
WAITING = "waiting for a converter"
STARTING = "starting"
DOWNLOADING = "downloading the input"
UPLOADING = "uploading the output"
"""The service's own steps of a conversion's ``progress``; the converter says the others
(``host.convert.STEPS``)."""
TRANSFER_SHARE = 0.1
"""The share of a conversion's fraction a download of its input takes (the first tenth), and
an upload of its output (the last tenth of what follows): they move by bytes, a download once
its size is known; the converter's steps take the rest."""
MAX_RUNNING = 2
TIMEOUT_SECONDS = 3600.0
MEMORY_LIMIT_BYTES: int | None = None
"""None: half the machine's memory."""
ENV_STORAGE_ROOT = "FARVIEW_STORAGE_ROOT"
MAX_DOWNLOAD_BYTES = 1 << 30
"""The converter's input budget (``host.convert.Budgets.max_bytes``)."""
DOWNLOAD_TIMEOUT_S = 600.0
UPLOAD_TIMEOUT_S = 600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL,
    conversion_id TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    ended_at REAL,
    error_code TEXT,
    error_message TEXT,
    output_uri TEXT,
    warnings TEXT NOT NULL DEFAULT '[]',
    UNIQUE (account_id, conversion_id)
);
"""
_COLUMNS = ("seq", "account_id", "conversion_id", "settings", "status", "created_at", "ended_at",
            "error_code", "error_message", "output_uri", "warnings")


class ConversionRequestError(Exception):
    """A conversion request the service refuses (400): ``target`` names the field."""

    def __init__(self, message: str, target: str) -> None:
        super().__init__(message)
        self.message = message
        self.target = target


@dataclass(frozen=True, kw_only=True)
class ConversionRecord:
    account_id: str
    conversion_id: str
    settings: dict[str, Any]
    status: str
    created_at: float
    ended_at: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    output_uri: str | None = None
    warnings: tuple[str, ...] = ()
    """What a successful conversion did not keep (an FBX file's embedded textures, say)."""
    seq: int = 0
    progress: tuple[str, float] | None = None
    """While it has not ended: what it does now and how much of it is done, 0 to 1 (not
    stored)."""


def _row(row: tuple[Any, ...]) -> ConversionRecord:
    values = dict(zip(_COLUMNS, row, strict=True))
    values["settings"] = json.loads(values["settings"])
    values["warnings"] = tuple(str(w) for w in json.loads(values["warnings"] or "[]"))
    return ConversionRecord(**values)


class ConversionStore:
    """The ``conversions`` table of the service's SQLite file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(conversions)")}
        if "warnings" not in columns:  # a store made before conversions reported warnings
            self._db.execute("ALTER TABLE conversions ADD COLUMN warnings TEXT NOT NULL "
                             "DEFAULT '[]'")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, account_id: str, conversion_id: str) -> ConversionRecord | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM conversions WHERE account_id=? AND "
                "conversion_id=?", (account_id, conversion_id)).fetchone()
        return _row(row) if row else None

    def insert_if_absent(self, rec: ConversionRecord) -> tuple[ConversionRecord, bool]:
        with transaction(self._db, self._lock) as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM conversions WHERE account_id=? AND "
                "conversion_id=?", (rec.account_id, rec.conversion_id)).fetchone()
            if row:
                return _row(row), False
            cols = _COLUMNS[1:]
            values = [json.dumps(getattr(rec, c)) if c in ("settings", "warnings")
                      else getattr(rec, c) for c in cols]
            cur = db.execute(f"INSERT INTO conversions ({', '.join(cols)}) VALUES "
                             f"({', '.join('?' * len(cols))})", values)
        return replace(rec, seq=int(cur.lastrowid or 0)), True

    def update(self, account_id: str, conversion_id: str, **changes: Any) -> None:
        sets = ", ".join(f"{c}=?" for c in changes)
        with self._lock:
            self._db.execute(f"UPDATE conversions SET {sets} WHERE account_id=? AND "
                             "conversion_id=?", [*changes.values(), account_id, conversion_id])

    def list_for(self, account_id: str, *, after_seq: int = 0, limit: int = 100
                 ) -> list[ConversionRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM conversions WHERE account_id=? AND seq>? "
                "ORDER BY seq LIMIT ?", (account_id, after_seq, limit)).fetchall()
        return [_row(r) for r in rows]

    def unfinished(self) -> list[ConversionRecord]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM conversions WHERE status IN (?, ?)",
                (NOT_STARTED, RUNNING)).fetchall()
        return [_row(r) for r in rows]

    def purge(self, *, older_than: float) -> int:
        with self._lock:
            cur = self._db.execute(
                "DELETE FROM conversions WHERE ended_at IS NOT NULL AND ended_at < ?",
                (older_than,))
        return cur.rowcount


def account_storage(root: Path, account_id: str) -> Path:
    """The account's own folder under the service's storage ``root``: its storage containers
    are folders in it. An id that is not a plain file name gets a hash of itself added, so that
    two ids never share a folder."""
    if re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}", account_id):
        return root / account_id
    plain = re.sub(r"[^A-Za-z0-9_.-]", "_", account_id)[:64].lstrip(".") or "_"
    return root / f"{plain}-{hashlib.sha256(account_id.encode()).hexdigest()[:16]}"


def container_path(root: Path, uri: object, target: str, *, web: bool = False,
                   web_hosts: frozenset[str] | None = None) -> Path | str:
    """The folder a ``storageContainerUri`` names: ``file:///abs`` inside ``root``, or a path
    relative to ``root``; ``web``: an ``http(s)://`` URL is returned as it is, when its host is
    in ``web_hosts`` (None: any host)."""
    if not isinstance(uri, str) or not uri or "\0" in uri or len(uri) > 2048:
        raise ConversionRequestError(f"{target} must be a file:// URI or a folder name in "
                                     "the account's storage", target)
    parsed = urllib.parse.urlparse(uri)
    if web and parsed.scheme in ("http", "https"):
        if not parsed.hostname:
            raise ConversionRequestError(f"{target}: an http(s) URL needs a host", target)
        if web_hosts is not None and parsed.hostname.lower() not in web_hosts:
            allowed = ", ".join(sorted(web_hosts)) or "none"
            raise ConversionRequestError(
                f"{target}: this service reaches storage URLs only on the hosts model URLs may "
                f"use ({allowed}), not {parsed.hostname}; ask its operator to allow the host "
                "(--model-url-host), or use a folder in the account's storage", target)
        return uri
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ConversionRequestError(f"{target}: file URIs must name this machine "
                                         "(file:///path)", target)
        path = Path(urllib.parse.unquote(parsed.path))
    elif parsed.scheme:
        raise ConversionRequestError(
            f"{target}: {parsed.scheme}:// storage is not supported; use file:///path or a "
            "folder name in the account's storage"
            + (", or an http(s) URL" if web else ""), target)
    else:
        path = root / uri
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a name too long for the file system, a loop of links
        raise ConversionRequestError(f"{target} is not a folder this service can use",
                                     target) from None
    root = root.resolve()
    if resolved != root and root not in resolved.parents:
        raise ConversionRequestError(
            f"{target} is outside the account's storage (on the service's machine, "
            "<storage root>/<account id>: <data-dir>/storage/<account id> unless "
            "FARVIEW_STORAGE_ROOT says otherwise); put the files there", target)
    return resolved


def _inside(base: Path, relative: str, target: str) -> Path:
    if not relative or "\0" in relative or Path(relative).is_absolute():
        raise ConversionRequestError(f"{target} must be a relative path in its container",
                                     target)
    if len(relative) > 1024 or any(len(part) > 255 for part in PurePosixPath(relative).parts):
        raise ConversionRequestError(f"{target} is too long (at most 1,024 characters, 255 a "
                                     "folder or file name)", target)
    try:
        path = (base / relative).resolve()
    except (OSError, RuntimeError):
        raise ConversionRequestError(f"{target} is not a path this service can use",
                                     target) from None
    if base not in path.parents:
        raise ConversionRequestError(f"{target} leaves its storage container", target)
    return path


@dataclass(frozen=True)
class WebInput:
    """An http(s) input container: its URL (with any token in its query, ARR's
    ``storageContainerReadListSas`` added), the ``blobPrefix`` whose blobs are fetched, and the
    asset's path under it."""

    container: str
    prefix: str
    relative: str


@dataclass(frozen=True)
class Locations:
    input: Path | str
    """A file under the storage root, or an http(s) URL to download."""
    output: Path | str
    """A file under the storage root, or an http(s) URL (with its token) to upload to."""
    output_uri: str
    """Where the output is, as responses show it (an http(s) URL without its query)."""
    web_input: WebInput | None = None


def _with_sas(container: str, sas: str) -> str:
    """The http(s) ``container`` URL with ARR's SAS token (``storageContainerReadListSas`` or
    ``...WriteSas``) added to its query (where a token may sit already)."""
    parsed = urllib.parse.urlparse(container)
    query = "&".join(q for q in (parsed.query, sas.lstrip("?")) if q)
    return urllib.parse.urlunparse(parsed._replace(query=query))


def _web_blob(container: str, relative: str, target: str) -> str:
    """The URL of ``relative`` in the http(s) ``container`` (its query, a token say, kept)."""
    if not relative or "\0" in relative or relative.startswith("/") or \
            ".." in Path(relative).parts:
        raise ConversionRequestError(f"{target} must be a relative path in its container",
                                     target)
    parsed = urllib.parse.urlparse(container)
    path = parsed.path.rstrip("/") + "/" + urllib.parse.quote(relative)
    return urllib.parse.urlunparse(parsed._replace(path=path))


def _redacted(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as responses show them: no SAS tokens (ARR never returned them), and no
    query on an http(s) container URL (where a token may sit too)."""
    out: dict[str, Any] = json.loads(json.dumps(settings))
    for key in ("inputLocation", "outputLocation"):
        loc = out.get(key)
        if not isinstance(loc, dict):
            continue
        loc.pop("storageContainerReadListSas", None)
        loc.pop("storageContainerWriteSas", None)
        uri = loc.get("storageContainerUri")
        if isinstance(uri, str) and urllib.parse.urlparse(uri).scheme in ("http", "https"):
            loc["storageContainerUri"] = public_url(uri)
    return out


def public_url(url: str) -> str:
    """``url`` without its query and fragment (which may hold a secret), for messages."""
    parsed = urllib.parse.urlparse(url)
    return urllib.parse.urlunparse(parsed._replace(query="", fragment="", netloc=(
        parsed.hostname or "") + (f":{parsed.port}" if parsed.port else "")))


def _sas(location: dict[str, Any], where: str, key: str) -> str:
    """A location's SAS token field (ARR's), or "" when there is none."""
    sas = location.get(key)
    if sas is not None and not isinstance(sas, str):
        raise ConversionRequestError(f"settings.{where}.{key} must be a string",
                                     f"settings.{where}.{key}")
    return sas or ""


_SETTINGS_FIELDS = frozenset({"inputLocation", "outputLocation"})
_INPUT_FIELDS = frozenset({"storageContainerUri", "relativeInputAssetPath", "blobPrefix",
                           "storageContainerReadListSas"})
_OUTPUT_FIELDS = frozenset({"storageContainerUri", "blobPrefix", "outputAssetFilename",
                            "storageContainerWriteSas"})


def locations(root: Path, settings: dict[str, Any], web_hosts: frozenset[str] | None = None
              ) -> Locations:
    """Where a conversion reads and writes (ARR's settings), checked; http(s) containers only
    on ``web_hosts`` (None: any host)."""
    inp = settings.get("inputLocation")
    out = settings.get("outputLocation")
    if not isinstance(inp, dict):
        raise ConversionRequestError("settings.inputLocation is required", "settings.inputLocation")
    if not isinstance(out, dict):
        raise ConversionRequestError("settings.outputLocation is required",
                                     "settings.outputLocation")
    # (unknown fields were accepted and echoed back, as if they did something; the session
    # routes refuse them too)
    for where, given, known in (("settings", settings, _SETTINGS_FIELDS),
                                ("settings.inputLocation", inp, _INPUT_FIELDS),
                                ("settings.outputLocation", out, _OUTPUT_FIELDS)):
        unknown = sorted(set(given) - known)
        if unknown:
            raise ConversionRequestError(
                f"{where} has fields ARR's conversion API does not: {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}", f"{where}.{unknown[0]}")
    in_dir = container_path(root, inp.get("storageContainerUri"),
                            "settings.inputLocation.storageContainerUri", web=True,
                            web_hosts=web_hosts)
    prefix = inp.get("blobPrefix") or ""
    rel = inp.get("relativeInputAssetPath")
    if not isinstance(rel, str):
        raise ConversionRequestError("settings.inputLocation.relativeInputAssetPath must name "
                                     "the input file", "settings.inputLocation.relativeInputAssetPath")
    if not isinstance(prefix, str) or "\0" in prefix or prefix.startswith("/") or \
            ".." in PurePosixPath(prefix).parts:
        raise ConversionRequestError("settings.inputLocation.blobPrefix must be a folder in the "
                                     "input container", "settings.inputLocation.blobPrefix")
    prefix = prefix.strip("/")
    asset = f"{prefix}/{rel}" if prefix else rel  # ARR: the asset's path starts at blobPrefix
    target = "settings.inputLocation.relativeInputAssetPath"
    web_input = None
    if isinstance(in_dir, str):
        container = _with_sas(in_dir, _sas(inp, "inputLocation", "storageContainerReadListSas"))
        src: Path | str = _web_blob(container, asset, target)
        web_input = WebInput(container, prefix, rel)
    else:
        src = _inside(in_dir, asset, target)
    out_dir = container_path(root, out.get("storageContainerUri"),
                             "settings.outputLocation.storageContainerUri", web=True,
                             web_hosts=web_hosts)
    out_prefix = out.get("blobPrefix") or ""
    name = out.get("outputAssetFilename") or (Path(rel).stem + ".glb")
    target = "settings.outputLocation.outputAssetFilename"
    if not isinstance(out_prefix, str) or not isinstance(name, str) or "/" in name or \
            name in ("", ".", ".."):
        raise ConversionRequestError("settings.outputLocation.outputAssetFilename must be a "
                                     "file name", target)
    relative = str(Path(out_prefix) / name) if out_prefix else name
    if isinstance(out_dir, str):
        url = _web_blob(_with_sas(out_dir, _sas(out, "outputLocation", "storageContainerWriteSas")),
                        relative, target)
        return Locations(src, url, public_url(url), web_input)
    dst = _inside(out_dir, relative, target)
    if isinstance(src, Path) and dst == src:
        raise ConversionRequestError(f"{target}: the output would overwrite the input; name "
                                     "another file or container", target)
    return Locations(src, dst, dst.as_uri(), web_input)


class ConversionManager:
    """Creates, runs and reports conversions (one per (account, id))."""

    def __init__(self, store: ConversionStore, storage_root: Path, *,
                 clock: Callable[[], float] = time.time, retention_days: float = 30.0,
                 web_hosts: frozenset[str] | None = None) -> None:
        self.store = store
        self.storage_root = storage_root
        self.web_hosts = web_hosts
        """The hosts http(s) storage may be on (None: any)."""
        self.clock = clock
        self.retention_seconds = retention_days * 86400
        self._slots = asyncio.Semaphore(MAX_RUNNING)
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._progress: dict[tuple[str, str], tuple[str, float]] = {}
        """(step, fraction done) of each conversion not yet ended (:meth:`_with_progress`)."""
        storage_root.mkdir(parents=True, exist_ok=True)

    async def start(self) -> None:
        """Mark conversions a previous service left unfinished as failed; drop old records."""
        for rec in await asyncio.to_thread(self.store.unfinished):
            await asyncio.to_thread(
                self.store.update, rec.account_id, rec.conversion_id, status=FAILED,
                ended_at=self.clock(), error_code="ServiceRestarted",
                error_message="the service stopped during the conversion; start it again with "
                "a new conversion id")
        await asyncio.to_thread(self.store.purge,
                                older_than=self.clock() - self.retention_seconds)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def create(self, account_id: str, conversion_id: str,
                     settings: dict[str, Any]) -> tuple[ConversionRecord, bool | None]:
        """(record, True) when created, (record, False) for a retry with the same settings,
        (record, None) when the id exists with other settings (a conflict)."""
        # refuse bad ones before recording
        locations(self._storage(account_id), settings, self.web_hosts)
        rec = ConversionRecord(account_id=account_id, conversion_id=conversion_id,
                               settings=settings, status=NOT_STARTED, created_at=self.clock())
        stored, created = await asyncio.to_thread(self.store.insert_if_absent, rec)
        key = (account_id, conversion_id)
        if not created:
            return (self._with_progress(stored, self._progress),
                    False if stored.settings == settings else None)
        self._progress[key] = (WAITING if self._slots.locked() else STARTING, 0.0)
        task = asyncio.create_task(self._run(stored))
        self._tasks[key] = task

        def ended(_task: asyncio.Task[None]) -> None:
            self._tasks.pop(key, None)
            self._progress.pop(key, None)

        task.add_done_callback(ended)
        return replace(stored, progress=self._progress[key]), True


    def _storage(self, account_id: str) -> Path:
        """The account's storage folder (:func:`account_storage`), made if missing."""
        folder = account_storage(self.storage_root, account_id)
        folder.mkdir(exist_ok=True)
        return folder

    async def get(self, account_id: str, conversion_id: str) -> ConversionRecord | None:
        progress = dict(self._progress)  # (taken first: a record read after its end has none)
        rec = await asyncio.to_thread(self.store.get, account_id, conversion_id)
        return None if rec is None else self._with_progress(rec, progress)

    async def list_for(self, account_id: str, *, after_seq: int = 0,
                       limit: int = 100) -> list[ConversionRecord]:
        progress = dict(self._progress)
        records = await asyncio.to_thread(self.store.list_for, account_id, after_seq=after_seq,
                                          limit=limit)
        return [self._with_progress(rec, progress) for rec in records]

    @staticmethod
    def _with_progress(rec: ConversionRecord,
                       progress: dict[tuple[str, str], tuple[str, float]]) -> ConversionRecord:
        """``rec`` with its :attr:`~ConversionRecord.progress`, as the converter last said
        (the service's own steps before and after it)."""
        told = progress.get((rec.account_id, rec.conversion_id))
        return rec if told is None or rec.status in TERMINAL else replace(rec, progress=told)

    async def _set(self, rec: ConversionRecord, **changes: Any) -> None:
        await asyncio.to_thread(self.store.update, rec.account_id, rec.conversion_id, **changes)

    async def _run(self, rec: ConversionRecord) -> None:
        async with self._slots:
            key = (rec.account_id, rec.conversion_id)

            def told(step: str, fraction: float) -> None:
                self._progress[key] = (step, fraction)

            told(STARTING, 0.0)
            await self._set(rec, status=RUNNING)
            try:
                where = locations(self._storage(rec.account_id), rec.settings, self.web_hosts)
                if isinstance(where.output, Path):
                    where.output.parent.mkdir(parents=True, exist_ok=True)
                code, message = await self._child(where, rec.conversion_id, told)
            except ConversionRequestError as e:
                code, message = "InvalidInput", e.message
            except asyncio.CancelledError:
                await self._set(rec, status=CANCELLED, ended_at=self.clock(),
                                error_code="Cancelled",
                                error_message="the service stopped during the conversion; "
                                "start it again with a new conversion id")
                raise
            except Exception:
                incident = hashlib.sha256(os.urandom(16)).hexdigest()[:12]
                log.exception("conversion %s failed (incident %s)", rec.conversion_id, incident)
                code, message = "InternalServerError", (
                    f"the conversion failed inside the service (incident {incident}: its "
                    "operator finds the details in the service's log); try again, or report it")
            if code is None:
                await self._set(rec, status=SUCCEEDED, ended_at=self.clock(),
                                output_uri=where.output_uri,
                                warnings=json.dumps(_warnings(message)))
                log.info("conversion %s succeeded: %s", rec.conversion_id, message)
            else:
                await self._set(rec, status=FAILED, ended_at=self.clock(), error_code=code,
                                error_message=message)
                log.info("conversion %s failed: %s", rec.conversion_id, message)

    async def _child(self, where: Locations, conversion_id: str,
                     progress: Callable[[str, float], None]) -> tuple[str | None, str]:
        """Run the conversion, telling ``progress`` each step; on success the output has
        ARR's ``<name>.info.json`` and ``<name>.result.json`` beside it."""
        if isinstance(where.input, str):
            with tempfile.TemporaryDirectory(prefix="farview-conversion-") as tmp:
                progress(DOWNLOADING, 0.0)
                local, failed = await _fetch_input(
                    where.input, where.web_input, Path(tmp),
                    _Transfer(lambda f: progress(DOWNLOADING, TRANSFER_SHARE * f)))
                if failed is not None:
                    return "InvalidInput", failed
                return await self._child(replace(where, input=local), conversion_id,
                                         _within(progress, TRANSFER_SHARE, 1.0))
        if isinstance(where.output, str):
            with tempfile.TemporaryDirectory(prefix="farview-conversion-") as tmp:
                name = Path(urllib.parse.unquote(urllib.parse.urlsplit(where.output).path)).name
                local = Path(tmp) / (name or "output.glb")
                code, message = await self._child(replace(where, output=local), conversion_id,
                                                  _within(progress, 0.0, 1.0 - TRANSFER_SHARE))
                if code is not None:
                    return code, message
                files = (local, *_reports(local))  # the asset first, then its reports
                progress(UPLOADING, 1.0 - TRANSFER_SHARE)
                sent = _Transfer(lambda f: progress(UPLOADING, 1.0 - TRANSFER_SHARE * (1.0 - f)),
                                 sum(path.stat().st_size for path in files))
                for path in files:
                    failed = await _upload(path, _sibling_url(where.output, path.name), sent)
                    if failed is not None:
                        return "OutputUploadFailed", failed
                return None, message
        if not where.input.is_file():
            return "InvalidInput", _missing_input(where.input)
        limit = MEMORY_LIMIT_BYTES or _half_memory()

        def limits() -> None:  # in the child, before exec
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        proc = await asyncio.create_subprocess_exec(
            *python_module(CONVERT_MODULE), "--info", "--progress", str(where.input),
            str(where.output),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=limits, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert proc.stdout is not None and proc.stderr is not None
        said: collections.deque[str] = collections.deque(maxlen=100)

        async def stderr(reader: asyncio.StreamReader) -> None:
            """The converter's progress as it goes, and the last of anything else it said."""
            while True:
                try:
                    raw = await reader.readline()
                except ValueError:  # a line over the reader's limit (dropped by it)
                    continue
                if not raw:
                    return
                told = parse_conversion_progress(raw)
                if told is not None:
                    progress(*told)
                else:
                    said.append(raw.decode(errors="replace").rstrip("\n"))

        try:
            # (awaited here, not through wait_for: cancelled by a service stop, a gather that
            # wait_for dropped logged "exception was never retrieved")
            async with asyncio.timeout(TIMEOUT_SECONDS):
                out, _, _ = await asyncio.gather(proc.stdout.read(), stderr(proc.stderr),
                                                 proc.wait())
        except (TimeoutError, asyncio.CancelledError) as e:
            proc.kill()
            await proc.wait()
            if isinstance(e, asyncio.CancelledError):
                raise
            return "Timeout", f"the conversion took longer than {TIMEOUT_SECONDS:.0f} s"
        if proc.returncode == 0:
            message = out.decode(errors="replace").strip()
            try:
                await asyncio.to_thread(_write_result_file, where.output, conversion_id,
                                        _warnings(message))
            except OSError as e:  # the output is whole: the conversion still succeeded
                log.warning("conversion %s: could not write its result file: %s",
                            conversion_id, e.strerror)
            return None, message
        last = [line for line in said if line.strip()][-1:] or [""]
        try:
            reported = json.loads(last[0])
            return str(reported["code"]), str(reported["message"])
        except (ValueError, KeyError, TypeError):
            ended = proc.returncode or 0
            how = (f"signal {signal.Signals(-ended).name}" if -ended in signal.valid_signals()
                   else f"status {ended}")
            return "ConversionFailed", (f"the converter ended with {how} "
                                        "(it crashed or ran out of its memory budget) on "
                                        f"{where.input.name}: the file may be malformed; "
                                        "export it again, or in another format")


MAX_INPUT_FILES = 1000
SETTINGS_SUFFIX = ".ConversionSettings.json"
OVERRIDES_SUFFIX = ".MaterialOverrides.json"
"""ARR's settings and material override files beside an input ``<stem>.<ext>`` are
``<stem>`` + these (read by the converter, :mod:`host.conversion_settings`; the service only
fetches them)."""
MAX_LISTING_BYTES = 8 << 20


def _within(progress: Callable[[str, float], None], start: float, end: float
            ) -> Callable[[str, float], None]:
    """``progress`` told a fraction of the part from ``start`` to ``end``."""
    return lambda step, fraction: progress(step, start + (end - start) * fraction)


class _Transfer:
    """Bytes moved against those expected, told as a fraction (nothing while the total is
    unknown)."""

    def __init__(self, told: Callable[[float], None], total: int = 0) -> None:
        self.told = told
        self.total = total
        self.done = 0

    def add(self, count: int) -> None:
        self.done += count
        if self.total > 0:
            self.told(min(1.0, self.done / self.total))


def _missing_input(path: Path) -> str:
    """What is wrong with an input that is not a file in its container (named by its name and
    the names beside it, never by the service's folders)."""
    if path.is_dir():
        return (f"the input {path.name} is a folder; relativeInputAssetPath names the model "
                "file (its path in the container, from blobPrefix)")
    if not path.parent.is_dir():
        return (f"the input {path.name}: its folder does not exist; check storageContainerUri "
                "(a folder in the account's storage), blobPrefix and relativeInputAssetPath")
    beside = sorted(p.name for p in path.parent.iterdir() if p.is_file())
    shown = ", ".join(beside[:10]) + (f" and {len(beside) - 10} more" if len(beside) > 10 else "")
    return (f"the input {path.name} does not exist in its storage container; the folder holds "
            f"{shown or 'no files'}")


async def _fetch_input(url: str, web: WebInput | None, folder: Path,
                       transfer: _Transfer) -> tuple[Path, str | None]:
    """Download the input into ``folder``: as ARR did, every blob under its ``blobPrefix``
    when the container answers Azure's List Blobs (a model's textures and ``.mtl`` come too),
    else the asset's one file; (the asset's local path, None or what went wrong). The bytes
    go to ``transfer``, against the listing's sizes or the asset's ``Content-Length``."""
    relative = web.relative if web is not None else \
        Path(urllib.parse.unquote(urllib.parse.urlparse(url).path)).name or "input"
    local = folder / relative
    listed = None if web is None else await _list_blobs(web.container, web.prefix)
    if not listed:
        local.parent.mkdir(parents=True, exist_ok=True)
        failed = await _download(url, local, transfer=transfer)
        if failed is None:  # and ARR's settings and override files, when the server has them
            failed = await _download_companions(url, local)
        return local, failed
    assert web is not None
    names = list(listed)
    if len(names) > MAX_INPUT_FILES:
        return local, (f"the input container holds over {MAX_INPUT_FILES} files under "
                       f"blobPrefix {web.prefix!r}; set blobPrefix to the model's own folder")
    budget = MAX_DOWNLOAD_BYTES
    sizes = list(listed.values())
    transfer.total = -1 if None in sizes else sum(s or 0 for s in sizes)  # (-1: not known)
    start = len(web.prefix) + 1 if web.prefix else 0
    for name in names:
        inner = name[start:]
        parts = PurePosixPath(inner).parts
        if not inner or inner.startswith("/") or ".." in parts or "\0" in inner:
            continue  # a name that would leave the folder: not fetched
        dest = folder.joinpath(*parts)
        dest.parent.mkdir(parents=True, exist_ok=True)
        failed = await _download(_web_blob(web.container, name, "a listed blob"), dest, budget,
                                 transfer)
        if failed is not None:
            return local, failed
        budget -= dest.stat().st_size
    if not local.is_file():
        return local, (f"the input {relative} is not under blobPrefix {web.prefix!r} in its "
                       "storage container")
    return local, None


def _sibling_url(url: str, name: str) -> str:
    """The URL of the file ``name`` beside the one at ``url`` (its query, a token, kept)."""
    parts = urllib.parse.urlsplit(url)
    folder, _, _ = parts.path.rpartition("/")
    return urllib.parse.urlunsplit(parts._replace(path=f"{folder}/{urllib.parse.quote(name)}"))


def _reports(output: Path) -> list[Path]:
    """ARR's info and result files beside an output asset."""
    return [output.with_name(output.stem + suffix) for suffix in (".info.json", ".result.json")]


def _write_result_file(output: Path, conversion_id: str, warnings: list[str]) -> None:
    """ARR's ``<name>.result.json`` beside a finished output: the conversion's id, its
    warnings (farview's are sentences, not ARR's numbered codes: each is ``{"warning":
    "farview", "title": ...}``) and the result."""
    doc: list[dict[str, Any]] = [{"conversionId": conversion_id}]
    doc += [{"warning": "farview", "title": w} for w in warnings]
    doc.append({"result": "succeeded with warnings" if warnings else "succeeded"})
    path = _reports(output)[1]
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(doc, indent=2))
    os.replace(tmp, path)


async def _download_companions(asset_url: str, local: Path) -> str | None:
    """Fetch ARR's files beside an input from a server that cannot list them (the same
    query: its token): ``<stem>.ConversionSettings.json``, the material override file its
    ``material-override`` names, else ``<stem>.MaterialOverrides.json``. A file the server
    does not have (HTTP 404) is not an error."""
    settings = local.with_name(local.stem + SETTINGS_SUFFIX)
    failed = await _download_optional(asset_url, settings.name, settings)
    if failed is not None:
        return failed
    named: object = ""
    if settings.is_file():
        try:
            doc = json.loads(settings.read_bytes())
            named = doc.get("material-override") if isinstance(doc, dict) else ""
        except ValueError:
            named = ""  # (the converter says what is wrong with it)
    if not isinstance(named, str) or not named:
        named = local.stem + OVERRIDES_SUFFIX
    name = PurePosixPath(named.replace("\\", "/"))
    if name.is_absolute() or ".." in name.parts or "\0" in named:
        return None  # the converter refuses the name, saying so
    return await _download_optional(asset_url, name.as_posix(),
                                    local.parent.joinpath(*name.parts))


async def _download_optional(asset_url: str, relative: str, dest: Path) -> str | None:
    """Fetch the file ``relative`` (to the asset's folder) from beside ``asset_url`` into
    ``dest`` (at most 4 MiB); HTTP 404 is no error."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    failed = await _download(_sibling_url(asset_url, relative), dest, 4 << 20)
    if failed is not None and "HTTP 404" in failed:
        dest.unlink(missing_ok=True)
        return None
    return failed


async def _list_blobs(container: str, prefix: str) -> dict[str, int | None] | None:
    """The names of the blobs under ``prefix`` and their sizes (Azure's List Blobs, following
    its pages; None where not given), or None when the server does not answer it (a plain web
    server: then one file is fetched)."""
    import xml.etree.ElementTree as ET

    import httpx

    names: dict[str, int | None] = {}
    marker = ""
    parsed = urllib.parse.urlparse(container)
    try:
        async with httpx.AsyncClient(timeout=30.0, follow_redirects=False) as client:
            for _page in range(MAX_INPUT_FILES // 100 + 2):
                query = urllib.parse.urlencode(
                    {"restype": "container", "comp": "list", "prefix": f"{prefix}/" if prefix else "",
                     **({"marker": marker} if marker else {})})
                url = urllib.parse.urlunparse(parsed._replace(
                    query="&".join(q for q in (parsed.query, query) if q)))
                r = await client.get(url)
                if r.status_code != 200 or len(r.content) > MAX_LISTING_BYTES:
                    return None
                root = ET.fromstring(r.content)
                if root.tag != "EnumerationResults":
                    return None
                for blob in root.iter("Blob"):
                    name = blob.findtext("Name")
                    size = (blob.findtext("Properties/Content-Length") or "").strip()
                    if name:
                        names[name] = int(size) if size.isdigit() else None
                marker = (root.findtext("NextMarker") or "").strip()
                if not marker or len(names) > MAX_INPUT_FILES:
                    break
    except (httpx.HTTPError, ET.ParseError, ValueError):
        return None
    return names


async def _download(url: str, dest: Path, limit: int = MAX_DOWNLOAD_BYTES,
                    transfer: _Transfer | None = None) -> str | None:
    """Fetch ``url`` into ``dest`` (bounded in size and time), counting its bytes in
    ``transfer`` (which takes the file's size for its total when it has none); None, or what
    went wrong (naming the URL without its query)."""
    import httpx

    shown = public_url(url)
    try:
        async with httpx.AsyncClient(timeout=30.0, follow_redirects=False) as client:
            async with asyncio.timeout(DOWNLOAD_TIMEOUT_S):
                async with client.stream("GET", url) as r:
                    if r.status_code != 200:
                        return (f"could not download the input from {shown}: HTTP "
                                f"{r.status_code}; check the URL and its access token")
                    size = 0
                    declared = r.headers.get("content-length", "")
                    if transfer is not None and not transfer.total and declared.isdigit():
                        transfer.total = int(declared)
                    with dest.open("wb") as f:
                        async for chunk in r.aiter_bytes(1 << 20):
                            size += len(chunk)
                            if size > limit:
                                return (f"the file at {shown} is over the {limit:,} "
                                        "bytes left of the download budget")
                            f.write(chunk)
                            if transfer is not None:
                                transfer.add(len(chunk))
    except TimeoutError:
        return f"downloading the input from {shown} took longer than {DOWNLOAD_TIMEOUT_S:.0f} s"
    except httpx.HTTPError as e:
        return f"could not download the input from {shown} ({type(e).__name__})"
    return None


async def _upload(path: Path, url: str, transfer: _Transfer) -> str | None:
    """PUT ``path`` to ``url`` as one block blob (Azure's Put Blob; any http server that takes
    a PUT), counting its bytes in ``transfer``; None, or what went wrong (naming the URL
    without its query)."""
    import httpx

    shown = public_url(url)
    size = path.stat().st_size

    async def chunks() -> Any:
        with path.open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                yield chunk
                transfer.add(len(chunk))

    kind = "application/json" if path.suffix == ".json" else "model/gltf-binary"
    headers = {"x-ms-blob-type": "BlockBlob", "Content-Type": kind,
               "Content-Length": str(size)}
    try:
        async with httpx.AsyncClient(timeout=60.0, follow_redirects=False) as client:
            async with asyncio.timeout(UPLOAD_TIMEOUT_S):
                r = await client.put(url, content=chunks(), headers=headers)
    except TimeoutError:
        return f"uploading the output to {shown} took longer than {UPLOAD_TIMEOUT_S:.0f} s"
    except httpx.HTTPError as e:
        return f"could not upload the output to {shown} ({type(e).__name__})"
    if r.status_code not in (200, 201):
        return (f"could not upload the output to {shown}: HTTP {r.status_code}; check the URL "
                "and its write access token (storageContainerWriteSas)")
    return None


def _half_memory() -> int:
    import psutil

    return int(psutil.virtual_memory().total // 2)


def _warnings(result: str) -> list[str]:
    """The ``warnings`` of the converter's result (its JSON on stdout)."""
    try:
        found = json.loads(result).get("warnings") or []
    except (ValueError, AttributeError):
        return []
    return [str(w)[:500] for w in found[:20]] if isinstance(found, list) else []


def conversion_json(rec: ConversionRecord, iso: Callable[[float], str]) -> dict[str, Any]:
    """A conversion as ARR's API shows it; while it has not ended, its ``progress`` too (not
    in ARR's API): ``{"step": ..., "fraction": 0.42}``."""
    out: dict[str, Any] = {
        "id": rec.conversion_id, "settings": _redacted(rec.settings), "status": rec.status,
        "creationTime": iso(rec.created_at),
        "error": None if rec.error_code is None else
        {"code": rec.error_code, "message": rec.error_message or ""},
    }
    if rec.progress is not None and rec.status not in TERMINAL:
        out["progress"] = {"step": rec.progress[0], "fraction": round(rec.progress[1], 3)}
    if rec.output_uri is not None:
        out["output"] = {"outputAssetUri": rec.output_uri}
        if rec.warnings:  # not in ARR's API, which wrote them to a file beside the output
            out["output"]["warnings"] = list(rec.warnings)
    return out
