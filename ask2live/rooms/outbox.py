"""Announcements that outlive a room log outage.

A session going live or ending, or a question changed over REST, is committed to the
cold store first and then told to the room. If the room log cannot take the event then
(Redis down or frozen), the change stands all the same: its event waits in the cold
store's outbox, and every process retries the outbox until the log takes it. The REST
call answers with its real outcome, never an error after the commit."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

import orjson

from ..errors import Unavailable
from ..store import Store
from ..tasks import cancel_and_wait
from ..timeutil import utcnow
from .hub import Hub

log = logging.getLogger(__name__)

# How often a process retries the announcements it had to keep: an outage of the room log
# rarely lasts less than a second.
OUTBOX_RETRY_SECONDS = 1.0
# How often every process looks for announcements another process kept (and did not get
# out before it stopped): rare, so one small query every so often.
OUTBOX_SWEEP_SECONDS = 15.0
# A claim not finished in this long belongs to a process that died: another takes over
# (the announcement may then be appended twice; events are idempotent for clients).
OUTBOX_CLAIM_SECONDS = 30.0
OUTBOX_BATCH = 100


class Outbox:
    def __init__(self, hub: Hub, store: Store, owner: str) -> None:
        self._hub = hub
        self._store = store
        self._owner = owner
        self._task: asyncio.Task | None = None
        # Announcements this process kept, and how many of those are known to be out: while
        # it has kept more, it retries every OUTBOX_RETRY_SECONDS.
        self._kept = 0
        self._out = 0
        # Rooms with announcements this process kept that are not out yet.
        self._waiting_rooms: set[int] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="room-outbox")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    async def announce(self, session_id: int, event_type: str, **fields: Any) -> None:
        """Append the event to the room; if the log is unavailable, keep it for later."""
        if session_id not in self._waiting_rooms:
            try:
                await self._hub.append(session_id, event_type, **fields)
                return
            except Unavailable as exc:
                log.warning("room %s: %s event kept in the outbox (%s)", session_id, event_type, exc.message)
        # Kept: also while earlier ones of this room wait, so that the room hears them in order
        # (a session_ended must not overtake the session_started still waiting).
        body = orjson.dumps({"type": event_type, "ts": int(time.time() * 1000), **fields})
        await self._store.outbox_add(session_id, event_type, body, utcnow())
        self._waiting_rooms.add(session_id)
        self._kept += 1

    async def drain(self) -> int:
        """Append what waits (claimed by this process); how many went out."""
        now = utcnow()
        rows = await self._store.outbox_claim(self._owner, OUTBOX_BATCH, now,
                                              now - timedelta(seconds=OUTBOX_CLAIM_SECONDS))
        sent = 0
        for row in rows:
            body = row["body"]
            await self._hub.append_body(int(row["session_id"]), row["type"],
                                        body.encode() if isinstance(body, str) else bytes(body))
            await self._store.outbox_delete(row["id"])
            sent += 1
        return sent

    async def _loop(self) -> None:
        last_sweep = time.monotonic()
        while True:
            await asyncio.sleep(OUTBOX_RETRY_SECONDS)
            if self._kept == self._out and time.monotonic() - last_sweep < OUTBOX_SWEEP_SECONDS:
                continue
            last_sweep = time.monotonic()
            # Read before the claim: whatever is kept after it waits for the next round.
            kept = self._kept
            try:
                while await self.drain() == OUTBOX_BATCH:
                    pass
                self._out = kept
                if self._kept == kept:
                    self._waiting_rooms.clear()
            except Unavailable:
                pass  # still down: the next round tries again
            except Exception:
                log.exception("room outbox")
