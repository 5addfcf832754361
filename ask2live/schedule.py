"""Sessions (the live events) and seat reservations: the rules, apart from HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Awaitable, Callable

from .errors import Conflict, Forbidden, Invalid, NotFound
from .models import Session, User
from .store import Store
from .timeutil import utcnow

TITLE_MAX = 200
DESCRIPTION_MAX = 5000
TAGS_MAX = 10
TAG_MAX = 32
RESERVATION_TARGET_MAX = 1_000_000

# A start time a little in the past is a clock skew or "starting now", not a mistake.
START_TIME_GRACE = timedelta(minutes=10)

SessionListener = Callable[[Session, str], Awaitable[None]]


class Schedule:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._listeners: list[SessionListener] = []

    def on_transition(self, listener: SessionListener) -> None:
        """Call ``listener(session, new_status)`` after a session goes live or ends."""
        self._listeners.append(listener)

    async def get(self, session_id: int, viewer: User | None = None) -> Session:
        session = await self._store.get_session(session_id, viewer.id if viewer else None)
        if session is None:
            raise NotFound("session_not_found", f"There is no session {session_id}.")
        return session

    async def _hosted(self, session_id: int, viewer: User, action: str) -> Session:
        session = await self.get(session_id, viewer)
        if session.host.id != viewer.id:
            raise Forbidden("not_host", f"Only the host may {action} this session.")
        return session

    @staticmethod
    def check_start_time(starts_at: datetime) -> None:
        if starts_at < utcnow() - START_TIME_GRACE:
            raise Invalid("starts_at_in_past", "The start time is in the past.")

    async def create(self, host: User, title: str, description: str, tags: list[str],
                     starts_at: datetime, target: int | None) -> Session:
        self.check_start_time(starts_at)
        session_id = await self._store.create_session(host.id, title, description, tags, starts_at, target, utcnow())
        return await self.get(session_id, host)

    async def list(self, *, status: str | None, host_id: int | None, query: str | None,
                   limit: int, offset: int, viewer: User | None) -> list[Session]:
        return await self._store.list_sessions(status=status, host_id=host_id, query=query,
                                               limit=limit, offset=offset, viewer_id=viewer.id if viewer else None)

    async def update(self, session_id: int, viewer: User, fields: dict) -> Session:
        session = await self._hosted(session_id, viewer, "edit")
        if session.status != "scheduled":
            raise Conflict("not_scheduled", f"Only a scheduled session can be edited; this one is {session.status}.")
        if "starts_at" in fields:
            self.check_start_time(fields["starts_at"])
        if fields and not await self._store.update_session(session_id, fields, utcnow()):
            raise Conflict("not_scheduled", "The session is no longer scheduled.")
        return await self.get(session_id, viewer)

    async def _transition(self, session_id: int, viewer: User, action: str, from_status: str, to_status: str) -> Session:
        session = await self._hosted(session_id, viewer, action)
        if not await self._store.transition_session(session_id, from_status, to_status, utcnow()):
            raise Conflict(f"not_{from_status}", f"Only a {from_status} session can be {to_status}; "
                           f"this one is {session.status}.")
        session = await self.get(session_id, viewer)
        for listener in self._listeners:
            await listener(session, to_status)
        return session

    async def cancel(self, session_id: int, viewer: User) -> Session:
        return await self._transition(session_id, viewer, "cancel", "scheduled", "cancelled")

    async def start(self, session_id: int, viewer: User) -> Session:
        return await self._transition(session_id, viewer, "start", "scheduled", "live")

    async def end(self, session_id: int, viewer: User) -> Session:
        return await self._transition(session_id, viewer, "end", "live", "ended")

    async def confirm(self, session_id: int, viewer: User, starts_at: datetime | None) -> Session:
        session = await self._hosted(session_id, viewer, "confirm")
        if session.status != "scheduled":
            raise Conflict("not_scheduled", "Only a scheduled session's time can be confirmed.")
        if starts_at is not None:
            self.check_start_time(starts_at)
        if not await self._store.confirm_session(session_id, starts_at, utcnow()):
            raise Conflict("not_scheduled", "The session is no longer scheduled.")
        return await self.get(session_id, viewer)

    async def reserve(self, session_id: int, viewer: User) -> Session:
        session = await self.get(session_id, viewer)
        if session.host.id == viewer.id:
            raise Forbidden("host_cannot_reserve", "The host does not need a seat in their own session.")
        if session.status != "scheduled":
            raise Conflict("not_scheduled", "Seats can only be reserved before the session starts.")
        if not await self._store.reserve(session_id, viewer.id, utcnow()):
            raise Conflict("already_reserved", "You have already reserved a seat.")
        return await self.get(session_id, viewer)

    async def unreserve(self, session_id: int, viewer: User) -> Session:
        await self.get(session_id, viewer)
        if not await self._store.unreserve(session_id, viewer.id):
            raise NotFound("not_reserved", "You have no reservation in this session.")
        return await self.get(session_id, viewer)

    async def reservations(self, session_id: int, viewer: User) -> list[tuple[User, datetime]]:
        await self._hosted(session_id, viewer, "see the reservations of")
        return await self._store.list_reservations(session_id)
