"""The old design, kept as a real option (``--persistence sync``) to measure against.

Every event is inserted into the cold store before it is broadcast, and the room's
recent messages are re-read from the cold store to build the broadcast, as ASK2LIVE did
before the redesign. One process only; no write-behind (nothing is ever unflushed).
"""

from __future__ import annotations

import asyncio

from ..timeutil import utcnow
from .memory import MemoryRoomLog
from ..events import Event

# How many recent messages the old design re-read for each broadcast.
REREAD_RECENT = 20


class SyncRoomLog(MemoryRoomLog):
    name = "sync"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._locks: dict[int, asyncio.Lock] = {}

    async def append(self, session_id: int, event_type: str, body: bytes) -> Event:
        # One append at a time per room: with two in flight, the later one's re-read could
        # run before the earlier one's INSERT commits, and the earlier event would be
        # stored but never broadcast. (The old design serialised on the database likewise.)
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            return await self._append(session_id, event_type, body)

    async def _append(self, session_id: int, event_type: str, body: bytes) -> Event:
        await self._load(session_id)
        event = Event(self._next_id(session_id), session_id, event_type, body, self.origin)
        await self._store.insert_events([event], utcnow())
        recent = await self._store.recent_events(session_id, REREAD_RECENT)
        # Broadcast what the database says is new (the event itself, as re-read).
        delivered = self._rooms[session_id][-1].key if self._rooms[session_id] else (0, -1)
        fresh = [Event(e.id, e.session_id, e.type, e.body, self.origin) for e in recent if e.key > delivered]
        self._rooms[session_id].extend(fresh)
        if self._deliver is not None and session_id in self._watched and fresh:
            self._deliver(session_id, fresh)
        return event

    async def take_unflushed(self, max_events: int) -> list[Event]:
        return []
