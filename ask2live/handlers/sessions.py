"""Sessions and reservations over REST: parse, call the schedule, answer."""

from __future__ import annotations

import re

import orjson

from ..errors import BadRequest, Invalid
from ..models import SESSION_STATUSES
from ..schedule import DESCRIPTION_MAX, RESERVATION_TARGET_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX
from ..timeutil import iso
from ..validation import Fields, query_int
from .base import ApiHandler, int_id

PAGE_DEFAULT = 20
PAGE_MAX = 100
OFFSET_MAX = 10**9


# A cursor is "o" and the offset of the next page: the OpenAPI document's pattern states
# every cursor the server takes (a base64 wrapper could only be described as "a string",
# and most strings would then be refused). Ten digits hold any offset a page can reach.
CURSOR_RE = re.compile(r"o([0-9]{1,10})")


def encode_cursor(offset: int) -> str:
    return f"o{offset}"


def decode_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    match = CURSOR_RE.fullmatch(cursor)
    if match is None:
        raise BadRequest("invalid_cursor", "The cursor is not one this server gave out.")
    return int(match.group(1))


def page_params(handler: ApiHandler) -> tuple[int, int]:
    limit = query_int(handler.get_query_argument("limit", None), "limit", default=PAGE_DEFAULT, minimum=1, maximum=PAGE_MAX)
    cursor = handler.get_query_argument("cursor", None)
    if cursor:
        return limit, decode_cursor(cursor)
    offset = query_int(handler.get_query_argument("offset", None), "offset", default=0, minimum=0, maximum=OFFSET_MAX)
    return limit, offset


def page(items: list, limit: int, offset: int) -> dict:
    return {"items": items, "next_cursor": encode_cursor(offset + limit) if len(items) == limit else None}


def session_fields(fields: Fields, *, partial: bool) -> dict:
    values: dict = {}
    required = not partial
    if not partial or "title" in fields:
        # Required whenever read: a PATCH may leave the title out, but not null it.
        values["title"] = fields.text("title", max_length=TITLE_MAX)
    if not partial or "description" in fields:
        values["description"] = fields.text("description", max_length=DESCRIPTION_MAX, required=False,
                                             allow_empty=True, multiline=True, default="")
    if not partial or "starts_at" in fields:
        values["starts_at"] = fields.time("starts_at", required=required)
    if not partial or "tags" in fields:
        values["tags"] = fields.string_list("tags", max_items=TAGS_MAX, max_length=TAG_MAX) or []
    if not partial or "reservation_target" in fields:
        values["reservation_target"] = fields.integer("reservation_target", minimum=1,
                                                      maximum=RESERVATION_TARGET_MAX, required=False, nullable=True)
    return values


class SessionsHandler(ApiHandler):
    async def get(self) -> None:
        status = self.get_query_argument("status", None) or None
        if status is not None and status not in SESSION_STATUSES:
            raise Invalid("invalid_status", f"status is one of {', '.join(SESSION_STATUSES)}.")
        host = self.get_query_argument("host", None)
        host_id = query_int(host, "host", default=0, minimum=1, maximum=2**62) if host is not None else None
        query = (self.get_query_argument("q", "") or "").strip()[:TITLE_MAX] or None
        limit, offset = page_params(self)
        sessions = await self.services.schedule.list(status=status, host_id=host_id, query=query,
                                                     limit=limit, offset=offset, viewer=self.user)
        self.send(page([s.to_json() for s in sessions], limit, offset))

    async def post(self) -> None:
        values = session_fields(self.fields(), partial=False)
        session = await self.services.schedule.create(
            self.user, values["title"], values["description"], values["tags"], values["starts_at"],
            values["reservation_target"],
        )
        self.send({"session": session.to_json()}, status=201)


class SessionHandler(ApiHandler):
    async def get(self, session_id: str) -> None:
        session = await self.services.schedule.get(int_id(session_id), self.user)
        self.send({"session": session.to_json()})

    async def patch(self, session_id: str) -> None:
        values = session_fields(self.fields(required=True), partial=True)
        session = await self.services.schedule.update(int_id(session_id), self.user, values)
        self.send({"session": session.to_json()})

    async def delete(self, session_id: str) -> None:
        session = await self.services.schedule.cancel(int_id(session_id), self.user)
        self.send({"session": session.to_json()})


class SessionActionHandler(ApiHandler):
    """POST /api/sessions/{id}/(start|end|confirm)."""

    async def post(self, session_id: str, action: str) -> None:
        schedule = self.services.schedule
        sid = int_id(session_id)
        if action == "start":
            session = await schedule.start(sid, self.user)
        elif action == "end":
            session = await schedule.end(sid, self.user)
        else:
            starts_at = self.fields().time("starts_at", required=False)
            session = await schedule.confirm(sid, self.user, starts_at)
        self.send({"session": session.to_json()})


class ReservationHandler(ApiHandler):
    async def post(self, session_id: str) -> None:
        session = await self.services.schedule.reserve(int_id(session_id), self.user)
        self.send({"session": session.to_json()}, status=201)

    async def delete(self, session_id: str) -> None:
        session = await self.services.schedule.unreserve(int_id(session_id), self.user)
        self.send({"session": session.to_json()})


class ReservationsHandler(ApiHandler):
    """The host's list of who reserved."""

    async def get(self, session_id: str) -> None:
        rows = await self.services.schedule.reservations(int_id(session_id), self.user)
        self.send({"items": [{"user": user.to_json(), "reserved_at": iso(at)} for user, at in rows]})


class TicketHandler(ApiHandler):
    """POST /api/sessions/{id}/ticket: a single-use ticket that opens the session's room
    socket (``/ws/sessions/{id}?ticket=...``), for clients that cannot send the login cookie
    or an Authorization header with the upgrade (the token must not go in a URL: proxies
    log URLs)."""

    async def post(self, session_id: str) -> None:
        session = await self.services.schedule.get(int_id(session_id), self.user)
        ticket, expires_at = await self.services.accounts.issue_ticket(self.token, self.user, session.id)
        self.send({"ticket": ticket, "expires_at": iso(expires_at)}, status=201)


# An audience cursor: the position (join order) of the last person of the previous page.
AUDIENCE_CURSOR_RE = re.compile(r"a([0-9]{1,15})")


class AudienceHandler(ApiHandler):
    """GET /api/sessions/{id}/audience?cursor=&limit=: who is in the live room, in the order
    they came, a page at a time (the host only: a room of thousands is not a public list)."""

    async def get(self, session_id: str) -> None:
        session = await self.services.schedule.get(int_id(session_id), self.user)
        limit = query_int(self.get_query_argument("limit", None), "limit", default=PAGE_DEFAULT, minimum=1,
                          maximum=PAGE_MAX)
        cursor = self.get_query_argument("cursor", None)
        after = None
        if cursor:  # empty: absent, as the sessions list takes it
            match = AUDIENCE_CURSOR_RE.fullmatch(cursor)
            if match is None:
                raise BadRequest("invalid_cursor", "The cursor is not one this server gave out.")
            after = int(match.group(1))
        page = await self.services.rooms.audience(session, self.user, after, limit)
        self.send({"count": page.count, "items": [orjson.Fragment(e) for e in page.entries],
                   "next_cursor": None if page.next is None else f"a{page.next}"})
