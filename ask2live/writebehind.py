"""Write-behind: moves room events from the room log to the cold store in batches.

One multi-row INSERT per batch (every FLUSH_INTERVAL or FLUSH_MAX_EVENTS, whichever
first), idempotent on the stream id, committed before the log is told (XACK). If the
cold store is down, the same batch is retried with back-off while the room goes on;
the backlog drains when it returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from .cache.roomlog import RoomLog
from .events import Event
from .store import Store
from .tasks import cancel_and_wait
from .timeutil import utcnow

log = logging.getLogger(__name__)

# 100 ms: a chat message reaches MySQL a tenth of a second after it reached the room,
# and a busy room's messages share one INSERT and one fsync.
FLUSH_INTERVAL = 0.1
# 500 rows keep one INSERT well under max_allowed_packet even with long messages.
FLUSH_MAX_EVENTS = 500
# Back-off while the cold store is unreachable: quick at first, then every 5 s.
RETRY_MIN = 0.2
RETRY_MAX = 5.0


@dataclass
class FlushStats:
    batches: int = 0
    events: int = 0
    failures: int = 0
    last_error: str | None = None
    observers: list = field(default_factory=list)  # (batch size, seconds) after each flush
    failure_observers: list = field(default_factory=list)  # () after each failed flush


class WriteBehind:
    def __init__(self, room_log: RoomLog, store: Store, interval: float = FLUSH_INTERVAL,
                 max_events: int = FLUSH_MAX_EVENTS) -> None:
        self._log = room_log
        self._store = store
        self._interval = interval
        self._max_events = max_events
        self._task: asyncio.Task | None = None
        self._closing = False
        self.stats = FlushStats()

    def start(self) -> None:
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="write-behind")

    async def close(self) -> None:
        """Stop, after one last flush of what is waiting (a graceful shutdown loses nothing)."""
        if self._task is not None:
            self._closing = True
            await cancel_and_wait(self._task)
            self._task = None
        try:
            while await self.flush_once():
                pass
        except Exception as exc:
            log.warning("write-behind: final flush failed (%s); the room log still holds the events", exc)

    async def flush_once(self, batch: list[Event] | None = None) -> int:
        """Insert one batch; returns its size (0: nothing was waiting)."""
        if batch is None:
            batch = await self._log.take_unflushed(self._max_events)
        if not batch:
            return 0
        start = time.perf_counter()
        await self._store.insert_events(batch, utcnow())
        await self._log.mark_flushed(batch)
        self.stats.batches += 1
        self.stats.events += len(batch)
        for observer in self.stats.observers:
            observer(len(batch), time.perf_counter() - start)
        return len(batch)

    async def _run(self) -> None:
        delay = RETRY_MIN
        batch: list[Event] | None = None
        while not self._closing:
            try:
                if batch is None:
                    batch = await self._log.take_unflushed(self._max_events)
                flushed = await self.flush_once(batch)
                batch = None
                delay = RETRY_MIN
                if flushed < self._max_events:  # a full batch: more is waiting, go again at once
                    await asyncio.sleep(self._interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Keep the batch: its entries are pending for this consumer and would not
                # be read again with '>'; retrying it as it is keeps the order too.
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                for observer in self.stats.failure_observers:
                    observer()
                log.warning("write-behind: flush failed (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
