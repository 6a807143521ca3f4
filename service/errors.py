"""The service's error type: every failure a route reports is an :class:`ApiError`, rendered as
ARR's body ``{"error": {"code": ..., "message": ...}}`` by :mod:`service.app`."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, *, target: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            err["target"] = self.target
        return {"error": err}


def bad_request(message: str, *, target: str | None = None) -> ApiError:
    return ApiError(400, "BadRequest", message, target=target)


def not_found(session_id: str) -> ApiError:
    return ApiError(404, "NotFound", f"session {session_id!r} does not exist for this account; "
                    "list sessions to see the ids you have", target=session_id)


def conflict(message: str) -> ApiError:
    return ApiError(409, "Conflict", message)


def unprocessable(message: str) -> ApiError:
    return ApiError(422, "UnprocessableEntity", message)
