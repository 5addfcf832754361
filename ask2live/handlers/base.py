"""Tornado plumbing shared by the REST handlers: auth, JSON bodies, JSON errors."""

from __future__ import annotations

from typing import Any

import orjson
import tornado.web
from tornado.log import app_log

from ..errors import ApiError, BadRequest, NotFound, TooLarge, Unauthorized
from ..models import User
from ..services import Services
from ..validation import Fields

TOKEN_COOKIE = "ask2live_token"

# 64 KiB holds the longest description with room to spare; a larger body is a mistake
# or an attack, and gets a JSON 413. `ask2live serve`'s HTTP server (httpserver.py) gives
# that answer itself, before reading the body; the check in prepare() is for a server
# without it (the tests' in-process one).
API_BODY_MAX = 64 * 1024


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(handler_class: type) -> list[str]:
    """The methods a handler class answers: those it defines (Tornado's defaults are 405s)."""
    return [m for m in HTTP_METHODS
            if getattr(handler_class, m.lower()) is not getattr(tornado.web.RequestHandler, m.lower())]


def error_answer(handler: tornado.web.RequestHandler, status_code: int, exc: BaseException | None) -> ApiError:
    """The error envelope for whatever ended a request, with its status and headers set on
    the handler: an ApiError as it is; a 405 with the Allow header RFC 9110 asks for;
    otherwise Tornado's reason (a 4xx) or internal_error."""
    if isinstance(exc, ApiError):
        handler.set_status(exc.status)
        error = exc
    elif status_code == 405:
        handler.set_header("Allow", ", ".join(allowed_methods(type(handler))))
        error = ApiError("method_not_allowed", f"{handler.request.method} is not allowed here.")
    elif status_code == 404:  # a static file that is not there
        error = ApiError("not_found", f"There is no {handler.request.path}.")
    elif status_code < 500:
        error = ApiError("bad_request", handler._reason)
    else:
        error = ApiError("internal_error", "Something went wrong on our side.")
    for name, value in error.headers.items():
        handler.set_header(name, value)
    return error


def request_token(handler: tornado.web.RequestHandler) -> str | None:
    """The bearer token from the Authorization header, else from the login cookie."""
    header = handler.request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return handler.get_cookie(TOKEN_COOKIE)


class ApiHandler(tornado.web.RequestHandler):
    """Every handler reads its dependencies from ``services`` and answers JSON."""

    # Routes that work without signing in set this to False.
    requires_login = True

    def initialize(self, services: Services) -> None:
        self.services = services
        self.token: str | None = None

    @property
    def route_name(self) -> str:
        """The metrics label: the handler, never the raw path (ids would explode it)."""
        return type(self).__name__

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self) -> None:
        length = self.request.headers.get("Content-Length")
        if (length and length.isdigit() and int(length) > API_BODY_MAX) or len(self.request.body) > API_BODY_MAX:
            raise TooLarge("body_too_large", f"The request body is larger than {API_BODY_MAX} bytes.")
        self.token = request_token(self)
        if self.token:
            self.current_user = await self.services.accounts.authenticate(self.token)
        if self.requires_login and self.current_user is None:
            raise Unauthorized("not_signed_in", "Sign in first: send 'Authorization: Bearer <token>'.")

    @property
    def user(self) -> User:
        return self.current_user

    def on_finish(self) -> None:
        self.services.metrics.observe_http(self.route_name, self.request.method, self.get_status(),
                                           self.request.request_time())

    def fields(self, required: bool = False) -> Fields:
        """The JSON object body; no body is an empty one, unless the operation requires one."""
        if not self.request.body:
            if required:
                raise BadRequest("invalid_body", "The request body must be a JSON object.")
            return Fields({})
        try:
            body = orjson.loads(self.request.body)
        except orjson.JSONDecodeError:
            raise BadRequest("invalid_json", "The request body is not valid JSON.") from None
        return Fields(body)

    def send(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(orjson.dumps(payload))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = error_answer(self, status_code, kwargs.get("exc_info", (None, None, None))[1])
        self.finish(orjson.dumps(error.to_json()))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ApiError):
            return  # an answer, not a fault
        if isinstance(value, tornado.web.HTTPError):
            super().log_exception(typ, value, tb)  # a line with _request_summary, below
            return
        # Not Tornado's line: it holds repr(request), whose URI has the query string.
        app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))

    def _request_summary(self) -> str:
        """Tornado's log lines name the request by this: the path only, as the access log
        does. A query string can hold a secret (a token or ticket someone put there)."""
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"


class NotFoundHandler(ApiHandler):
    requires_login = False
    route_name = "not_found"

    async def prepare(self) -> None:
        raise NotFound("no_such_route", f"There is no {self.request.path}.")


def int_id(value: str) -> int:
    """A path id; the routes only match digits, this bounds them to a BIGINT."""
    number = int(value)
    if number > 2**62:
        raise NotFound("not_found", "No such id.")
    return number
