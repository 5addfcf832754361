"""What one process still owes the cold store: the Redis room log's durability ledger.

An event is acknowledged to its sender once it is in the room's stream. Until the cold
store has it, the appending process keeps it here too, under the room's *epoch* (when the
stream was last created). Three things can happen to it:

- the write-behind group persists it (its watermark passes it): the process lets go;
- Redis loses the stream (a restart without persistence, FLUSHALL, eviction; the room's
  epoch changes): the event becomes an *orphan*, and this process writes it itself;
- the group passes it without ever holding it (the MAXLEN guard trimmed it, a partial
  rollback lost it) and the cold store lacks it: an orphan too.

No Redis here: the log feeds the ledger what it read, so the rules are testable alone.
"""

from __future__ import annotations

from ..events import Event

Key = tuple[int, int]


class DurabilityLedger:
    def __init__(self) -> None:
        self._epochs: dict[int, str] = {}  # room → epoch this process last saw
        # Appended here, maybe not yet in the cold store: (room, id) → (event, epoch then).
        self._own: dict[tuple[int, str], tuple[Event, str]] = {}
        # Own events the stream lost: this process writes them to the cold store itself.
        self._orphans: dict[tuple[int, str], Event] = {}

    def __len__(self) -> int:
        return len(self._own) + len(self._orphans)

    def epoch(self, session_id: int) -> str | None:
        return self._epochs.get(session_id)

    def note_epoch(self, session_id: int, epoch: str) -> int:
        """The room's epoch as just read. If it changed, Redis lost the room: the events
        appended under an older epoch become orphans. Returns how many did."""
        previous = self._epochs.get(session_id)
        self._epochs[session_id] = epoch
        if previous is None or previous == epoch:
            return 0
        lost = [k for k, (_, ep) in self._own.items() if k[0] == session_id and ep != epoch]
        for k in lost:
            self._orphans[k] = self._own.pop(k)[0]
        return len(lost)

    def appended(self, event: Event, epoch: str) -> None:
        self._own[(event.session_id, event.id)] = (event, epoch)

    def rooms(self) -> set[int]:
        """Rooms this process still owes events of."""
        return {sid for sid, _ in self._own} | {sid for sid, _ in self._orphans}

    def unflushed(self, session_id: int, after: Key, before: Key) -> list[Event]:
        """Own and orphaned events of a room strictly between two positions (a catch-up
        reaching below what the stream holds reads them beside the cold store)."""
        events = [ev for (sid, _), (ev, _) in self._own.items() if sid == session_id and after < ev.key < before]
        events += [ev for (sid, _), ev in self._orphans.items() if sid == session_id and after < ev.key < before]
        return events

    def orphans(self, limit: int) -> list[Event]:
        return list(self._orphans.values())[:limit]

    def flushed(self, event: Event) -> bool:
        """The cold store has committed ``event``; True if it was an orphan (then nothing
        is to be acknowledged to the stream's group for it)."""
        key = (event.session_id, event.id)
        was_orphan = self._orphans.pop(key, None) is not None
        self._own.pop(key, None)
        return was_orphan

    def oldest_ms(self) -> int | None:
        keys = [ev.key for ev, _ in self._own.values()] + [ev.key for ev in self._orphans.values()]
        return min(keys)[0] if keys else None

    def settled(self, session_id: int, delivered: Key, min_pending: Key | None) -> list[Event]:
        """Own events the group has passed: at or before its last-delivered id and before
        its oldest pending entry. Persisted, as far as the group knows."""
        return [ev for (sid, _), (ev, _) in self._own.items()
                if sid == session_id and ev.key <= delivered and (min_pending is None or ev.key < min_pending)]

    def overdue(self, session_id: int, older_than_ms: int, settled: list[Event]) -> list[Event]:
        """Own events appended before ``older_than_ms`` and still not settled: the stream may
        have lost them past the group's position (to be looked for in the stream)."""
        return [ev for (sid, _), (ev, _) in self._own.items()
                if sid == session_id and ev.key[0] < older_than_ms and ev not in settled]

    def release(self, session_id: int, events: list[Event], stored: set[Key]) -> list[Event]:
        """Let go of ``events`` (settled, or lost from the stream); those the cold store
        lacks (``stored`` holds the keys it has) become orphans, and are returned."""
        missing = []
        for ev in events:
            self._own.pop((session_id, ev.id), None)
            if ev.key not in stored:
                self._orphans[(session_id, ev.id)] = ev
                missing.append(ev)
        return missing
