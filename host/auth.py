"""Bearer-token check for the render host's HTTP routes.

The session service's token-exchange route issues ES256 JWTs (claims ``sub`` = account id,
``aud`` = ``farview``, ``exp``, all required). The host gets only the service's PUBLIC key on
stdin (it can check tokens, never mint them) and accepts only tokens issued to the account that
owns its session.
"""

from __future__ import annotations

import jwt

from farview.input.launch import TOKEN_ALGORITHM, TOKEN_AUDIENCE


def verify_bearer(authorization: str | None, *, key: str, account_id: str) -> str | None:
    """Return ``None`` when the header carries a valid token for ``account_id``, else a reason."""
    if not authorization:
        return "missing Authorization header; send 'Bearer <access token>'"
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return "Authorization must be 'Bearer <access token>'"
    try:
        claims = jwt.decode(token.strip(), key, algorithms=[TOKEN_ALGORITHM], audience=TOKEN_AUDIENCE,
                            options={"require": ["exp", "sub", "aud"]})
    except jwt.ExpiredSignatureError:
        return "access token expired; get a new one from the session service"
    except jwt.InvalidTokenError:
        return "access token is not valid for this host"
    if claims.get("sub") != account_id:
        return "access token belongs to another account"
    return None
