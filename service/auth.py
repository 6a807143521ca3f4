"""Accounts and credentials: who may call the service, and the access tokens it issues.

A request authenticates with ``Authorization: Bearer <credential>`` where the credential is one of

- the account key (``Bearer <key>``),
- ``<account_id>:<account_key>`` (ARR's token-exchange spelling, accepted everywhere),
- an access token from ``GET /accounts/{id}/token``: an HS256 JWT with ``sub`` = account id,
  ``aud`` = ``farview``, ``iat``, ``exp`` (24 h), signed with the service's token key.

The credential must belong to the account named in the path. Keys are compared with
:func:`hmac.compare_digest`. The token key is 32 random bytes kept in ``<data-dir>/token.key``
(mode 0600) and handed to render hosts so they can check the same tokens.

Everything here is synchronous and immutable after construction (safe to share).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from farview.input.launch import ACCOUNT_FILE, TOKEN_AUDIENCE

log = logging.getLogger(__name__)

TOKEN_LIFETIME_SECONDS = 24 * 3600
TOKEN_KEY_FILE = "token.key"


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600 from the start (never world-readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create_token_key(data_dir: Path) -> bytes:
    path = data_dir / TOKEN_KEY_FILE
    if path.exists():
        key = bytes.fromhex(path.read_text().strip())
        if len(key) >= 32:
            return key
        log.warning("token key in %s is too short; making a new one", path)
    key = secrets.token_bytes(32)
    write_private(path, key.hex().encode())
    return key


def load_or_create_local_account(data_dir: Path) -> tuple[str, str, bool]:
    """Return (account id, key, created) from ``<data-dir>/account.json``, creating it if absent."""
    path = data_dir / ACCOUNT_FILE
    if path.exists():
        raw = json.loads(path.read_text())
        return str(raw["account_id"]), str(raw["account_key"]), False
    account_id = "local"
    account_key = secrets.token_urlsafe(32)
    write_private(path, json.dumps({"account_id": account_id, "account_key": account_key},
                                   indent=2).encode() + b"\n")
    return account_id, account_key, True


@dataclass(frozen=True)
class Authenticator:
    """Checks bearer credentials against the configured accounts and issues access tokens."""

    accounts: dict[str, str] = field(repr=False)
    """account id → account key."""
    token_key: bytes = field(repr=False)

    def issue_token(self, account_id: str, *, lifetime: float = TOKEN_LIFETIME_SECONDS) -> str:
        now = int(time.time())
        claims = {"sub": account_id, "aud": TOKEN_AUDIENCE, "iat": now,
                  "exp": now + int(lifetime)}
        return jwt.encode(claims, self.token_key, algorithm="HS256")

    def _key_matches(self, account_id: str, candidate: str) -> bool:
        expected = self.accounts.get(account_id)
        if expected is None:
            # Compare anyway so that unknown and known accounts take the same time.
            hmac.compare_digest(candidate.encode(), b"x" * 43)
            return False
        return hmac.compare_digest(candidate.encode(), expected.encode())

    def authenticate(self, authorization: str | None, account_id: str | None, *,
                     allow_token: bool = True) -> str | None:
        """Return the authenticated account id, or None.

        ``account_id`` is the account the request addresses (None: any account, e.g. the OpenAPI
        document). ``allow_token=False`` accepts only keys (the token exchange itself).
        """
        if not authorization:
            return None
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return None
        candidates = [account_id] if account_id is not None else list(self.accounts)
        if ":" in credential:
            cred_id, _, key = credential.partition(":")
            if cred_id in candidates and self._key_matches(cred_id, key):
                return cred_id
            return None
        if credential.count(".") == 2 and allow_token:
            try:
                claims = jwt.decode(credential, self.token_key, algorithms=["HS256"],
                                    audience=TOKEN_AUDIENCE, options={"require": ["exp", "sub"]})
            except jwt.InvalidTokenError:
                claims = {}  # not a (valid) token: it may still be a key that contains dots
            sub = claims.get("sub")
            if isinstance(sub, str) and sub in candidates and sub in self.accounts:
                return sub
        for candidate in candidates:
            if self._key_matches(candidate, credential):
                return candidate
        return None
