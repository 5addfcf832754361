"""The API description, the server's limits, a health check, the metrics and the web client's files."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import orjson
import tornado.web
from prometheus_client import CONTENT_TYPE_LATEST

from ..cuesheet import QUESTION_MAX
from ..protocol import CHAT_MAX, CLIENT_MSG_ID_MAX
from ..schedule import DESCRIPTION_MAX, RESERVATION_TARGET_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX
from .accounts import DISPLAY_NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, USERNAME_RE
from .base import ApiHandler, error_answer
from .sessions import PAGE_MAX

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "openapi.json"


def pattern_lengths(pattern: str) -> tuple[int, int]:
    """The length bounds of a pattern of the form ``^[...]{min,max}$``. The username's
    bounds are written once, in USERNAME_RE; they are read back from it here."""
    match = re.fullmatch(r"\^\[[^\]]+\]\{(\d+),(\d+)\}\$", pattern)
    if match is None:
        raise ValueError(f"teach pattern_lengths() the pattern {pattern!r}")
    return int(match.group(1)), int(match.group(2))


USERNAME_MIN, USERNAME_MAX = pattern_lengths(USERNAME_RE.pattern)

# What the server accepts, for clients to check before they send (the web client's forms
# take their maxlength, minlength and pattern from here): each value is the constant the
# validation itself uses. Lengths count Unicode code points; text is trimmed first, a
# password is taken as typed.
LIMITS = {
    "username": {"min_length": USERNAME_MIN, "max_length": USERNAME_MAX, "pattern": USERNAME_RE.pattern},
    "password": {"min_length": PASSWORD_MIN, "max_length": PASSWORD_MAX},
    "display_name": {"max_length": DISPLAY_NAME_MAX},
    "title": {"max_length": TITLE_MAX},
    "description": {"max_length": DESCRIPTION_MAX},
    "tags": {"max_items": TAGS_MAX, "max_length": TAG_MAX},
    "reservation_target": {"maximum": RESERVATION_TARGET_MAX},
    "question": {"max_length": QUESTION_MAX},
    "chat": {"max_length": CHAT_MAX},
    "client_msg_id": {"max_length": CLIENT_MSG_ID_MAX},
    "page": {"max_limit": PAGE_MAX},
}


class OpenApiHandler(ApiHandler):
    requires_login = False

    def get(self) -> None:
        self.finish(OPENAPI_FILE.read_bytes())


class LimitsHandler(ApiHandler):
    """Public: the sign-up form needs the username pattern before anyone is signed in."""

    requires_login = False

    def get(self) -> None:
        self.send(LIMITS)


class HealthHandler(ApiHandler):
    requires_login = False

    async def get(self) -> None:
        # pid: which process answered (several serve one port with --workers).
        self.send({"ok": True, "store": self.services.store.engine.name, "pid": os.getpid()})


class MetricsHandler(ApiHandler):
    """Prometheus text exposition. Unauthenticated, like every exporter: keep it off the
    public address (the nginx example only proxies /api and /ws)."""

    requires_login = False
    route_name = "metrics"

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)

    def get(self) -> None:
        self.finish(self.services.metrics.exposition())


class StaticHandler(tornado.web.StaticFileHandler):
    """The web client's page and files; its errors (a missing file, TRACE) are the JSON
    envelope like every other route's, not Tornado's HTML page."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = error_answer(self, status_code, kwargs.get("exc_info", (None, None, None))[1])
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(orjson.dumps(error.to_json()))
