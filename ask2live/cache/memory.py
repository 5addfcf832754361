"""The in-process room log: the embedded default, for one server process.

Same ids, resume and presence semantics as the Redis log. Events wait in ``_unflushed``
until the write-behind commits them; the log keeps the last ``HISTORY_KEEP`` events
per room and reads older ones (and everything after a restart) from the cold store.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Iterable

from ..store import Store
from ..events import Catchup, Event, merge_events, parse_event_id, stage_of
from .roomlog import (AUDIENCE_CHANGES_KEEP, HISTORY_KEEP, REPLAY_MAX, AudienceNews, AudiencePage, Deliver, Notice,
                      RoomLog)


class MemoryRoomLog(RoomLog):
    name = "memory"

    def __init__(self, store: Store, history_keep: int = HISTORY_KEEP) -> None:
        self._store = store
        self._history_keep = history_keep
        self._rooms: dict[int, deque[Event]] = {}
        self._last: dict[int, tuple[int, int]] = {}
        self._loaded: set[int] = set()
        self._unflushed: dict[tuple[int, str], Event] = {}
        self._presence: dict[int, dict[str, bytes]] = {}
        # (room, user id) → that user's members in the room, in the order they joined.
        self._by_user: dict[tuple[int, str], dict[str, None]] = {}
        # The audience: each room's members in join order (member → position), the changes
        # not yet told, the count last told, and when the next `audience` event may go.
        self._roster: dict[int, dict[str, int]] = {}
        self._roster_seq: dict[int, int] = {}
        self._changes: dict[int, list[bytes]] = {}
        self._audience_told: dict[int, int] = {}
        self._audience_quiet_until: dict[int, float] = {}
        self._groups: dict[tuple[int, str], set[int]] = {}
        self._watched: set[int] = set()
        self._deliver: Deliver | None = None
        self._notice: Notice | None = None

    async def start(self, deliver: Deliver, notice: Notice | None = None) -> None:
        self._deliver = deliver
        self._notice = notice

    async def notify(self, message: bytes) -> None:
        if self._notice is not None:
            self._notice(message)

    async def close(self) -> None:
        self._deliver = None

    def watch(self, session_id: int, after: str | None) -> None:
        if session_id in self._watched:
            return
        self._watched.add(session_id)
        room = self._rooms.get(session_id)
        if room and after is not None and self._deliver is not None:
            after_key = parse_event_id(after)
            missed = [e for e in room if e.key > after_key]
            if missed:
                self._deliver(session_id, missed)

    def unwatch(self, session_id: int) -> None:
        self._watched.discard(session_id)

    async def _load(self, session_id: int) -> deque[Event]:
        """The room's recent events, warmed from the cold store the first time."""
        room = self._rooms.get(session_id)
        if room is None:
            room = deque(maxlen=self._history_keep)
            recent = await self._store.recent_events(session_id, self._history_keep)
            # After a restart: the stage as the room's stored events leave it.
            speakers, hands = stage_of(await self._store.stage_events(session_id))
            # Another coroutine may have created the room while we read.
            if session_id in self._rooms:
                return self._rooms[session_id]
            room.extend(recent)
            self._rooms[session_id] = room
            self._groups[(session_id, "speakers")] = speakers
            self._groups[(session_id, "hands")] = hands
            if recent:
                self._last[session_id] = recent[-1].key
        return room

    def _next_id(self, session_id: int) -> str:
        """Redis's rule: the current millisecond, or the last id's sequence plus one."""
        now_ms = int(time.time() * 1000)
        last_ms, last_seq = self._last.get(session_id, (0, -1))
        key = (now_ms, 0) if now_ms > last_ms else (last_ms, last_seq + 1)
        self._last[session_id] = key
        return f"{key[0]}-{key[1]}"

    async def append(self, session_id: int, event_type: str, body: bytes) -> Event:
        room = await self._load(session_id)
        event = Event(self._next_id(session_id), session_id, event_type, body, self.origin)
        room.append(event)
        self._unflushed[(session_id, event.id)] = event
        if self._deliver is not None and session_id in self._watched:
            self._deliver(session_id, [event])
        return event

    async def read(self, session_id: int, since: str | None, limit: int = REPLAY_MAX) -> Catchup:
        room = await self._load(session_id)
        if since is None:
            return Catchup(list(room)[-limit:], True)
        since_key = parse_event_id(since)
        last = self._last.get(session_id)
        if last is not None and since_key > last:
            return Catchup([], False)  # a position this room never reached
        held = [e for e in room if e.key > since_key]
        oldest_held = room[0].key if room else None
        cold: list[Event] = []
        if oldest_held is None or since_key < oldest_held:
            # The log does not reach back to ``since``: the gap is in the cold store, or
            # still waiting for it (an event can leave the deque before its flush).
            stored = await self._store.events_after(session_id, since_key, limit + 1, before=oldest_held)
            waiting = [e for (sid, _), e in self._unflushed.items()
                       if sid == session_id and since_key < e.key and (oldest_held is None or e.key < oldest_held)]
            cold = merge_events(stored, waiting)
        events = cold + held
        source = "cold_store" if cold else "log"
        if len(events) > limit:
            return Catchup(events[:limit], False, source)
        return Catchup(events, True, source)

    async def last_id(self, session_id: int) -> str | None:
        await self._load(session_id)
        last = self._last.get(session_id)
        return f"{last[0]}-{last[1]}" if last else None

    async def presence_add(self, session_id: int, member: str, info: bytes, change: bytes = b"") -> list[str]:
        self._presence.setdefault(session_id, {})[member] = info
        user = self._by_user.setdefault((session_id, member.split(":", 1)[0]), {})
        user[member] = None  # a dict keeps the order of joining
        self._roster_seq[session_id] = seq = self._roster_seq.get(session_id, 0) + 1
        self._roster.setdefault(session_id, {})[member] = seq
        self._note_change(session_id, change)
        return list(user)

    async def presence_remove(self, session_id: int, member: str, change: bytes = b"") -> bool:
        key = (session_id, member.split(":", 1)[0])
        self._by_user.get(key, {}).pop(member, None)
        if not self._by_user.get(key, True):
            del self._by_user[key]
        self._roster.get(session_id, {}).pop(member, None)
        removed = self._presence.get(session_id, {}).pop(member, None) is not None
        if removed:
            self._note_change(session_id, change)
        return removed

    def _note_change(self, session_id: int, change: bytes) -> None:
        if change:
            changes = self._changes.setdefault(session_id, [])
            changes.append(change)
            del changes[:-AUDIENCE_CHANGES_KEEP]

    async def presence_of(self, session_id: int, user_ids: Iterable[int]) -> dict[str, bytes]:
        presence = self._presence.get(session_id, {})
        return {m: presence[m] for uid in user_ids for m in self._by_user.get((session_id, str(uid)), {})
                if m in presence}

    async def audience_page(self, session_id: int, after: int | None, limit: int) -> AudiencePage:
        roster = self._roster.get(session_id, {})
        presence = self._presence.get(session_id, {})
        # Members join at the end: the roster is in join order already.
        page = [(seq, m) for m, seq in roster.items() if after is None or seq > after]
        more = len(page) > limit
        page = page[:limit]
        return AudiencePage(len(roster), [presence[m] for _, m in page], page[-1][0] if more else None)

    async def audience_news(self, session_id: int, interval_ms: int) -> AudienceNews | None:
        now = time.monotonic()
        if now < self._audience_quiet_until.get(session_id, 0.0):
            return None
        count = len(self._roster.get(session_id, {}))
        changes = self._changes.pop(session_id, [])
        if not changes and self._audience_told.get(session_id) == count:
            return AudienceNews(count, [], False)
        self._audience_quiet_until[session_id] = now + interval_ms / 1000
        self._audience_told[session_id] = count
        return AudienceNews(count, changes, True)

    async def presence(self, session_id: int) -> dict[str, bytes]:
        return dict(self._presence.get(session_id, {}))

    async def presence_expired(self, session_id: int) -> list[str]:
        return []  # one process: its members leave when their sockets close

    async def presence_refresh(self, session_id: int, members: list[str]) -> None:
        pass

    async def set_member(self, session_id: int, group: str, user_id: int, present: bool) -> bool:
        await self._load(session_id)
        members = self._groups.setdefault((session_id, group), set())
        if present == (user_id in members):
            return False
        (members.add if present else members.discard)(user_id)
        return True

    async def members(self, session_id: int, group: str) -> set[int]:
        await self._load(session_id)
        return set(self._groups.get((session_id, group), set()))

    async def take_unflushed(self, max_events: int) -> list[Event]:
        return list(self._unflushed.values())[:max_events]

    async def mark_flushed(self, events: list[Event]) -> None:
        for event in events:
            self._unflushed.pop((event.session_id, event.id), None)

    async def backlog(self) -> int:
        return len(self._unflushed)

    def oldest_unflushed_ms(self) -> int | None:
        return min((e.key for e in self._unflushed.values()), default=(None,))[0]

    async def ping(self) -> None:
        return None
