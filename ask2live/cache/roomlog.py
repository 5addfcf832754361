"""The room log: each live room's recent events, presence and voice state.

Two implementations behind this one interface: Redis Streams (production, shared by every
server process) and an in-process log (the embedded default, one process). Both hand out
the same ids ("<ms>-<seq>", Redis stream ids), resume the same way, and feed the
write-behind to the cold store through ``take_unflushed`` / ``mark_flushed``.
"""

from __future__ import annotations

import abc
from typing import Callable, Iterable, NamedTuple

from ..events import Catchup, Event

# The stream keeps at least this many recent events for history on join, after they
# are safely in the cold store; older ones are trimmed away (they are in MySQL).
HISTORY_KEEP = 500

# A welcome carries at most this many events of history or catch-up. A resume that
# would need more says recovered: false and sends the state afresh instead.
REPLAY_MAX = 1000


# The audience's pending changes kept for the next `audience` event (older ones are dropped:
# past a few dozen names a change list is noise, the count says it).
AUDIENCE_CHANGES_KEEP = 100


class AudienceNews(NamedTuple):
    """What ``audience_news`` found: the room's connection count, and the changes (joins
    and leaves, as given to presence_add / presence_remove) since the last `audience` event."""

    count: int
    changes: list[bytes]
    # False: nothing changed since the last event told (no event to append).
    new: bool


class AudiencePage(NamedTuple):
    count: int
    # The members' infos (as given at join), in the order they joined.
    entries: list[bytes]
    # Where the next page starts (None: this was the last page).
    next: int | None


Deliver = Callable[[int, list[Event]], None]
# A notice to every server process (not a room's event: not kept, not replayed).
Notice = Callable[[bytes], None]


class RoomLog(abc.ABC):
    """What the live room needs from its log. One instance per server process."""

    name: str
    # Names this instance in the events it appends (Event.origin).
    origin: str = "local"

    @abc.abstractmethod
    async def start(self, deliver: Deliver, notice: Notice | None = None) -> None:
        """Begin; ``deliver(session_id, events)`` receives every event of every watched room,
        in log order, each once (events appended by this process included); ``notice``
        receives every ``notify`` of every process of the deployment."""

    @abc.abstractmethod
    async def notify(self, message: bytes) -> None:
        """Tell every process of the deployment, this one included (best effort: a process
        that is not connected to the log at that moment misses it)."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def watch(self, session_id: int, after: str | None) -> None:
        """Deliver this room's events after ``after`` from now on."""

    @abc.abstractmethod
    def unwatch(self, session_id: int) -> None: ...

    @abc.abstractmethod
    async def append(self, session_id: int, event_type: str, body: bytes) -> Event:
        """Add an event (``body``: its JSON object without id). Returns it with its id;
        the room's watchers have been delivered it, and every earlier event, on return."""

    @abc.abstractmethod
    async def read(self, session_id: int, since: str | None, limit: int = REPLAY_MAX) -> Catchup:
        """``since`` None: the most recent ``limit`` events. Otherwise every event after
        ``since``, in order, falling back to the cold store where the log does not reach."""

    @abc.abstractmethod
    async def last_id(self, session_id: int) -> str | None: ...

    # -- presence: one entry per connection, so two tabs of a user are two members

    @abc.abstractmethod
    async def presence_add(self, session_id: int, member: str, info: bytes, change: bytes = b"") -> list[str]:
        """Add a member ("<user id>:<connection>"); the connections of that member's user
        in the room, oldest first, this one included. ``change``, if given, is kept for the
        next ``audience_news``."""

    @abc.abstractmethod
    async def presence_remove(self, session_id: int, member: str, change: bytes = b"") -> bool:
        """Remove a member; True if this call removed it (so its leave is told once, and
        ``change`` kept for the audience once)."""

    @abc.abstractmethod
    async def presence_of(self, session_id: int, user_ids: Iterable[int]) -> dict[str, bytes]:
        """The live members of these users (the stage): member → info. Costs the number of
        these users' connections, not the room's."""

    @abc.abstractmethod
    async def audience_page(self, session_id: int, after: int | None, limit: int) -> AudiencePage:
        """The room's members in the order they joined, ``limit`` at a time."""

    @abc.abstractmethod
    async def audience_news(self, session_id: int, interval_ms: int) -> AudienceNews | None:
        """The audience's count and changes for an `audience` event, at most one a room per
        ``interval_ms`` over every process: None while the interval runs (ask again later)."""

    @abc.abstractmethod
    async def presence(self, session_id: int) -> dict[str, bytes]:
        """The live members: connection id → the info given at join."""

    @abc.abstractmethod
    async def presence_expired(self, session_id: int) -> list[str]:
        """Members whose process stopped refreshing them (it crashed); removed here."""

    @abc.abstractmethod
    async def presence_refresh(self, session_id: int, members: list[str]) -> None: ...

    # -- speakers (voice granted) and raised hands: sets of user ids

    @abc.abstractmethod
    async def set_member(self, session_id: int, group: str, user_id: int, present: bool) -> bool:
        """Add to / remove from ``group`` ("speakers" or "hands"); True if that changed it."""

    @abc.abstractmethod
    async def members(self, session_id: int, group: str) -> set[int]: ...

    async def stage(self, session_id: int) -> tuple[set[int], set[int]]:
        """(speakers, raised hands) at once (a log may answer both in one round trip)."""
        return await self.members(session_id, "speakers"), await self.members(session_id, "hands")

    # -- write-behind source

    @abc.abstractmethod
    async def take_unflushed(self, max_events: int) -> list[Event]:
        """Events not yet in the cold store, oldest first, for the write-behind to insert."""

    @abc.abstractmethod
    async def mark_flushed(self, events: list[Event]) -> None:
        """These events are committed to the cold store."""

    @abc.abstractmethod
    async def backlog(self) -> int:
        """How many events wait for the cold store (as far as this process can tell)."""

    @abc.abstractmethod
    def oldest_unflushed_ms(self) -> int | None:
        """Wall-clock ms of the oldest event this process holds that the cold store lacks."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise if the log's backing service is unreachable."""
