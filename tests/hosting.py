"""Test helpers that start a real ``farview host`` process and mint its access tokens.

The host is started exactly as the session service starts it (configuration as one JSON line
on stdin, the listening line on stdout), so these tests exercise the real entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from farview.input.launch import HOST_MODULE, TOKEN_ALGORITHM, TOKEN_AUDIENCE, HostConfig, parse_listening
from farview.service.auth import public_key_pem

REPO = Path(__file__).resolve().parent.parent
SHARED_MODELS = REPO.parent / "shared" / "models"


def new_signing_key() -> str:
    """A fresh service signing key (PEM, ECDSA P-256), as ``farview serve`` makes one."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def mint_token(key: str, account_id: str, ttl: float = 3600) -> str:
    """An access token signed with the private ``key``, as the service issues them."""
    now = int(time.time())
    return jwt.encode({"sub": account_id, "aud": TOKEN_AUDIENCE, "iat": now, "exp": now + int(ttl)},
                      key, algorithm=TOKEN_ALGORITHM)


@dataclass
class RunningHost:
    proc: subprocess.Popen[str]
    port: int
    key: str = field(repr=False)
    """The service's private signing key (the host has only its public key)."""
    account_id: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def whep_url(self) -> str:
        return f"{self.base_url}/whep"

    def token(self) -> str:
        return mint_token(self.key, self.account_id)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_host(tmp_path: Path, *, models: tuple[str, ...] = (), timeout: float = 90.0,
               extra_args: tuple[str, ...] = ()) -> RunningHost:
    key = new_signing_key()
    account = "acct-test"
    config = HostConfig(session_id="sess-test", account_id=account,
                        token_public_key=public_key_pem(key), models=models)
    log_path = tmp_path / f"host-{secrets.token_hex(3)}.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - owned by the child process
    proc = subprocess.Popen(
        [sys.executable, "-m", HOST_MODULE, "--port", "0", *extra_args],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, cwd=REPO,
    )
    log_file.close()
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(config.to_json() + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        raise RuntimeError(f"host exited ({proc.returncode}) before listening:\n{log_path.read_text()}")
    _, port = parse_listening(line)
    return RunningHost(proc, port, key, account, log_path)


def model_mask(rgb: np.ndarray, threshold: int = 24) -> np.ndarray:
    """Pixels that differ from the background (sampled in the four corners)."""
    h, w, _ = rgb.shape
    corners = np.stack([rgb[2, 2], rgb[2, w - 3], rgb[h - 3, 2], rgb[h - 3, w - 3]]).astype(int)
    background = np.median(corners, axis=0)
    diff = np.abs(rgb.astype(int) - background).max(axis=-1)
    return np.asarray(diff > threshold)


def centroid_x(rgb: np.ndarray) -> float:
    """Horizontal centre of the model's pixels, as a fraction of the width."""
    mask = model_mask(rgb)
    xs = np.nonzero(mask)[1]
    assert xs.size > 0, "no model pixels in the frame"
    return float(xs.mean()) / rgb.shape[1]


@contextlib.asynccontextmanager
async def connected(host: RunningHost, viewport: tuple[int, int]) -> AsyncIterator[Any]:
    """A real client connection to ``host``, closed (and the slot freed) afterwards."""
    from farview.client.connection import connect_to_host

    conn = await connect_to_host(host.whep_url, host.token(), viewport=viewport)
    try:
        yield conn
    finally:
        await conn.close()
        await asyncio.sleep(0.1)  # let the host see the goodbye before the next test connects
