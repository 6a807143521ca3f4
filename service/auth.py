"""Accounts and credentials: who may call the service, and the access tokens it issues.

A request authenticates with ``Authorization: Bearer <credential>`` where the credential is one of

- the account key (``Bearer <key>``),
- ``<account_id>:<account_key>`` (ARR's token-exchange spelling, accepted everywhere),
- an access token from ``GET /accounts/{id}/token``: an ES256 JWT with ``sub`` = account id,
  ``aud`` = ``farview``, ``iat``, ``exp`` (24 h), signed with the service's private key.

The credential must belong to the account named in the path. Keys are compared with
:func:`hmac.compare_digest`. The signing key is an ECDSA P-256 private key kept in
``<data-dir>/token-signing-key.pem`` (mode 0600); render hosts get only its public key, so they
can check the same tokens but never mint one.

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
from functools import cached_property
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from farview.input.launch import ACCOUNT_FILE, TOKEN_ALGORITHM, TOKEN_AUDIENCE

log = logging.getLogger(__name__)

TOKEN_LIFETIME_SECONDS = 24 * 3600
TOKEN_KEY_FILE = "token-signing-key.pem"


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


def load_or_create_signing_key(data_dir: Path) -> str:
    """The service's token signing key (PEM, ECDSA P-256), made on first start."""
    path = data_dir / TOKEN_KEY_FILE
    if path.exists():
        pem = path.read_text()
        try:
            if isinstance(serialization.load_pem_private_key(pem.encode(), None),
                          ec.EllipticCurvePrivateKey):
                return pem
        except ValueError:
            pass
        log.warning("the signing key in %s is not an EC private key; making a new one", path)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    write_private(path, pem.encode())
    return pem


def public_key_pem(private_pem: str) -> str:
    """The PEM public key of a PEM private key (what render hosts get)."""
    key = serialization.load_pem_private_key(private_pem.encode(), None)
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


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
    signing_key: str = field(repr=False)
    """PEM private key that signs access tokens (ES256)."""

    @cached_property
    def public_key(self) -> str:
        """The PEM public key render hosts check tokens with."""
        return public_key_pem(self.signing_key)

    def issue_token(self, account_id: str, *, lifetime: float = TOKEN_LIFETIME_SECONDS) -> str:
        now = int(time.time())
        claims = {"sub": account_id, "aud": TOKEN_AUDIENCE, "iat": now,
                  "exp": now + int(lifetime)}
        return jwt.encode(claims, self.signing_key, algorithm=TOKEN_ALGORITHM)

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
                claims = jwt.decode(credential, self.public_key, algorithms=[TOKEN_ALGORITHM],
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
