"""Errors are values with a status, a code a client can branch on, and a message a person can read."""

from __future__ import annotations

import math


class ApiError(Exception):
    status = 400
    # Headers the answer carries besides the envelope (Retry-After).
    headers: dict[str, str] = {}

    def __init__(self, code: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        if status is not None:
            self.status = status

    def to_json(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403


class NotFound(ApiError):
    status = 404


class Conflict(ApiError):
    status = 409


class TooLarge(ApiError):
    status = 413


class Invalid(ApiError):
    status = 422


class TooManyRequests(ApiError):
    """Throttled: the client may try again after ``retry_after`` seconds (Retry-After)."""

    status = 429

    def __init__(self, code: str, message: str, retry_after: float) -> None:
        super().__init__(code, message)
        # Whole seconds, rounded up: Retry-After has no fractions, and 0 would invite a retry too soon.
        self.headers = {"Retry-After": str(max(1, math.ceil(retry_after)))}


class Unavailable(ApiError):
    """A backing service (the room log's Redis, the cold store) could not be reached or
    gave up: nothing was changed by the failed step, and the client may try again."""

    status = 503


def room_unavailable() -> Unavailable:
    return Unavailable("room_unavailable", "The room is briefly unavailable; send again.")


def store_unavailable() -> Unavailable:
    return Unavailable("store_unavailable", "The database is briefly unavailable; try again.")
