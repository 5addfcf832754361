"""Errors are values with a status, a code a client can branch on, and a message a person can read."""

from __future__ import annotations


class ApiError(Exception):
    status = 400

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


class Unavailable(ApiError):
    """A backing service (the room log's Redis, the cold store) could not be reached or
    gave up: nothing was changed by the failed step, and the client may try again."""

    status = 503


def room_unavailable() -> Unavailable:
    return Unavailable("room_unavailable", "The room is briefly unavailable; send again.")


def store_unavailable() -> Unavailable:
    return Unavailable("store_unavailable", "The database is briefly unavailable; try again.")
