"""The Redis Streams room log: shared by every server process of a deployment.

Per room, all keys share the hash tag ``{room:<id>}`` (so the room's scripts run on one
Redis Cluster slot):

- ``…:log``       the stream; its ids are the events' ids. Consumer group ``coldstore``
                  feeds the write-behind (XREADGROUP, XACK; XAUTOCLAIM takes over what a
                  dead process had read but not flushed).
- ``…:epoch``     when this stream was (re)created; a missing or new epoch means Redis
                  lost the room (restart without persistence, eviction) and it was
                  re-warmed from the cold store.
- ``…:presence``  sorted set: connection → expiry (ms); ``…:members`` hash: connection → info.
- ``…:speakers``, ``…:hands``  sets of user ids.

Durability: an event is acknowledged to its sender after XADD. Until the cold store has
it, it is in the stream (the group's pending list or not yet read) *and* in the appending
process's own buffer; the buffer lets go of an event once the group's persisted watermark
passes it. So a process killed (the stream keeps it, another process claims it) or a
Redis wiped (the appender still has it, and writes it itself) loses nothing; only both
at once can lose the unflushed tail (Redis AOF with appendfsync everysec closes that to
about a second).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.resources
import logging
import os
import secrets
import socket
import time
from typing import Any, Awaitable, Callable, Iterable, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from ..errors import room_unavailable
from ..store import Store
from ..tasks import cancel_and_wait
from ..events import Catchup, Event, merge_events, parse_event_id, stage_of
from .ledger import DurabilityLedger
from .roomlog import (AUDIENCE_CHANGES_KEEP, HISTORY_KEEP, REPLAY_MAX, AudienceNews, AudiencePage, Deliver, Notice,
                      RoomLog)

log = logging.getLogger(__name__)

GROUP = "coldstore"

# A hard memory guard on XADD (approximate, so Redis trims whole nodes cheaply). In
# normal running the write-behind trims far below this, and only what is persisted;
# this bound only bites if the cold store is down for ~100k events in one room, and
# then the appending processes still hold those events in their own buffers.
STREAM_MAXLEN = 100_000

# The reader's XREAD BLOCK. Its connection has a longer socket timeout (redis-py's
# default would cut a blocking read), and a per-process wake stream interrupts it when
# the set of watched rooms changes, so this only bounds an idle loop.
READ_BLOCK_MS = 5_000
READ_SOCKET_TIMEOUT = READ_BLOCK_MS / 1000 + 10
READ_COUNT = 1_000

# An entry read by a consumer and still unacknowledged after this long belongs to a
# process that died (a live one flushes in ~100 ms, or retries while MySQL is down and
# then the claim is harmless: inserts are idempotent).
CLAIM_IDLE_MS = 10_000
CLAIM_INTERVAL = 2.0

# How often each process asks which of its own buffered events the group has persisted,
# checks the room's epoch (a wiped Redis), and trims persisted events off the streams.
WATERMARK_INTERVAL = 1.0

# An own event not written after this long is looked for in the stream; if the stream
# lost it (and the cold store lacks it), this process writes it.
OWN_EVENT_OVERDUE_MS = 30_000

# After a room's stream is re-created, processes may still be writing the events that
# Redis lost from their own buffers into the cold store; a resume reaching back across
# that point is not claimed complete until this much time has passed.
SETTLE_MS = 10_000

# Commands in flight at once per process. redis-py's default pool refuses the 101st
# ("Too many connections"); this one makes a burst wait up to REDIS_POOL_WAIT seconds for
# a free connection instead (a busy room has hundreds of appends in flight).
REDIS_POOL_SIZE = 256
REDIS_POOL_WAIT = 5.0

# A command (an append is one script call) takes well under a millisecond; a Redis that
# has not answered in this long is frozen or gone, and the request that waits on it is
# answered room_unavailable (or, for an announcement, the event waits in the outbox)
# rather than hanging for redis-py's default of no timeout at all.
REDIS_COMMAND_TIMEOUT = 2.0

# Presence: each process refreshes its connections' expiry every PRESENCE_TTL / 3, so
# the members of a crashed process disappear within PRESENCE_TTL.
PRESENCE_TTL_MS = 30_000
# Room keys other than the stream expire a day after their last write.
ROOM_KEY_TTL_S = 86_400






F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def _unavailable_on_redis_error(method: F) -> F:
    """The interface's methods answer an unreachable Redis with the one backend-neutral
    error (503 room_unavailable), whatever redis-py raised."""

    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except (RedisError, OSError) as exc:
            raise room_unavailable() from exc

    return wrapper  # type: ignore[return-value]


# The Lua scripts, one file each in cache/lua/ (what each does is said at its top).
SCRIPTS = ("append", "warm", "trim", "presence_add", "presence_remove", "presence_of", "audience", "audience_page")


def load_script(name: str) -> str:
    return importlib.resources.files(__package__).joinpath("lua", f"{name}.lua").read_text(encoding="utf-8")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _key_lt(a: str, b: str) -> bool:
    return parse_event_id(a) < parse_event_id(b)


class RedisRoomLog(RoomLog):
    name = "redis"

    def __init__(self, url: str, store: Store, prefix: str = "ask2live",
                 history_keep: int = HISTORY_KEEP, consumer: str | None = None) -> None:
        self._url = url
        self._store = store
        self._prefix = prefix
        self._history_keep = history_keep
        # A stable name (host:port) lets a restarted process find its own pending entries.
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        # Unique per running instance (a restarted process is another origin).
        self.origin = f"{self.consumer}:{secrets.token_hex(3)}"
        self._redis: aioredis.Redis | None = None
        self._reader_redis: aioredis.Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._deliver: Deliver | None = None
        self._notice: Notice | None = None
        self._watched: dict[int, str] = {}  # room → last delivered id
        # What this process appended that the cold store may not have yet.
        self._ledger = DurabilityLedger()
        # Rooms whose pending list this consumer has re-read (XREADGROUP id 0) since start.
        self._pending_done: set[int] = set()
        self._known_rooms: set[int] = set()
        self._tasks: list[asyncio.Task] = []
        self._wake_key = f"{prefix}:wake:{self.consumer}"
        self._last_claim = 0.0
        self._closing = False
        self._carry: list[Event] = []
        self._wakes: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ keys

    def _key(self, session_id: int, what: str) -> str:
        return f"{self._prefix}:{{room:{session_id}}}:{what}"

    @property
    def _notices_channel(self) -> str:
        return f"{self._prefix}:notices"

    @property
    def _rooms_key(self) -> str:
        return f"{self._prefix}:rooms"

    @property
    def redis(self) -> aioredis.Redis:
        assert self._redis is not None
        return self._redis

    # ------------------------------------------------------------------ lifecycle

    async def start(self, deliver: Deliver, notice: Notice | None = None) -> None:
        self._closing = False
        self._deliver = deliver
        self._notice = notice
        pool = aioredis.BlockingConnectionPool.from_url(
            self._url, max_connections=REDIS_POOL_SIZE, timeout=REDIS_POOL_WAIT, health_check_interval=10,
            socket_timeout=REDIS_COMMAND_TIMEOUT, socket_connect_timeout=REDIS_COMMAND_TIMEOUT,
            # Once, at once, and only when the connection broke (a pooled connection to a
            # Redis that restarted): a timeout is not retried, it already took its time.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))
        self._redis = aioredis.Redis(connection_pool=pool, decode_responses=False)
        self._reader_redis = aioredis.from_url(self._url, decode_responses=False,
                                               socket_timeout=READ_SOCKET_TIMEOUT)
        self._scripts = {name: self.redis.register_script(load_script(name)) for name in SCRIPTS}
        await self.redis.ping()
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="roomlog-reader"),
            asyncio.create_task(self._watermark_loop(), name="roomlog-watermark"),
            asyncio.create_task(self._notice_loop(), name="roomlog-notices"),
        ]

    async def close(self) -> None:
        self._closing = True
        for task in [*self._tasks, *self._wakes]:
            await cancel_and_wait(task)
        self._tasks = []
        try:
            await self.redis.delete(self._wake_key)
        except RedisError:
            pass
        for client in (self._redis, self._reader_redis):
            if client is not None:
                await client.aclose()

    # ------------------------------------------------------------------ notices

    @_unavailable_on_redis_error
    async def notify(self, message: bytes) -> None:
        await self.redis.publish(self._notices_channel, message)

    async def _notice_loop(self) -> None:
        """Every process's notices (Redis pub/sub: to every subscriber, kept by nobody)."""
        assert self._reader_redis is not None
        while not self._closing:
            pubsub = self._reader_redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._notices_channel)
                while not self._closing:
                    message = await pubsub.get_message(timeout=READ_BLOCK_MS / 1000)
                    if message is not None and self._notice is not None:
                        self._notice(bytes(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or restarting: subscribe again
                log.warning("room log notices: %s", exc)
                await asyncio.sleep(0.5)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    # ------------------------------------------------------------------ warm / epoch

    async def _warm(self, session_id: int) -> str:
        """Create the room's stream from the cold store if it is missing; the epoch."""
        recent = await self._store.recent_events(session_id, self._history_keep)
        # The stage as the cold store knows it, and what this process appended since.
        owed = self._ledger.unflushed(session_id, (0, -1), (1 << 62, 0))
        speakers, hands = stage_of(merge_events(await self._store.stage_events(session_id), owed))
        args: list[Any] = [str(int(time.time() * 1000)), ROOM_KEY_TTL_S, len(speakers), len(hands),
                           *speakers, *hands]
        for event in recent:
            args += [event.id, event.type, event.body]
        keys = [self._key(session_id, what) for what in ("log", "epoch", "speakers", "hands")]
        epoch = _text(await self._scripts["warm"](keys=keys, args=args))
        await self.redis.sadd(self._rooms_key, session_id)
        self._known_rooms.add(session_id)
        self._note_epoch(session_id, epoch)
        return epoch

    def _note_epoch(self, session_id: int, epoch: str) -> None:
        """Remember the room's epoch; if it changed, Redis lost the room, and the events this
        process appended under the old epoch are written to the cold store from here."""
        previous = self._ledger.epoch(session_id)
        lost = self._ledger.note_epoch(session_id, epoch)
        if lost:
            log.warning("room %s: Redis lost its stream; writing %d own events to the cold store directly",
                        session_id, lost)
        if previous is not None and previous != epoch:
            self._pending_done.discard(session_id)

    # ------------------------------------------------------------------ watch / deliver

    def watch(self, session_id: int, after: str | None) -> None:
        if session_id not in self._watched:
            self._watched[session_id] = after or "0-0"
            self._wake()

    def unwatch(self, session_id: int) -> None:
        if self._watched.pop(session_id, None) is not None:
            self._wake()

    def _wake(self) -> None:
        if self._redis is not None and not self._closing:
            task = asyncio.get_running_loop().create_task(self._send_wake())
            self._wakes.add(task)  # held until done: the loop keeps only weak references
            task.add_done_callback(self._wakes.discard)

    async def _send_wake(self) -> None:
        try:
            await self.redis.xadd(self._wake_key, {"w": "1"}, maxlen=10, approximate=False)
            await self.redis.expire(self._wake_key, 3600)
        except RedisError:
            pass

    def _deliver_entries(self, session_id: int, entries: list) -> None:
        """Deliver a contiguous run of stream entries, skipping what was delivered already.
        Every run starts at or before the room's last delivered id (it was read after it),
        so skipping keeps each room's delivery gap-free, in order and without repeats."""
        last = self._watched.get(session_id)
        if last is None or self._deliver is None:
            return
        last_key = parse_event_id(last)
        events = []
        for entry_id, fields in entries:
            event = self._event(session_id, entry_id, fields)
            if event is not None and event.key > last_key:
                events.append(event)
                last_key = event.key
        if events:
            self._watched[session_id] = events[-1].id
            self._deliver(session_id, events)

    @staticmethod
    def _event(session_id: int, entry_id: Any, fields: Any) -> Event | None:
        if not fields:  # an entry trimmed away while pending
            return None
        if isinstance(fields, list):
            fields = dict(zip(fields[::2], fields[1::2]))
        origin = _text(fields.get(b"o", b""))
        return Event(_text(entry_id), session_id, _text(fields[b"t"]), bytes(fields[b"e"]), origin)

    async def _read_loop(self) -> None:
        """Other processes' events: one blocking XREAD over every watched room."""
        assert self._reader_redis is not None
        wake_last = "0-0"
        while not self._closing:
            try:
                streams = {self._wake_key: wake_last}
                rooms = {self._key(sid, "log"): sid for sid in self._watched}
                for key, sid in rooms.items():
                    streams[key] = self._watched[sid]
                reply = await self._reader_redis.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
                for key, entries in reply or []:
                    key = _text(key)
                    if key == self._wake_key:
                        wake_last = _text(entries[-1][0])
                    elif key in rooms:
                        self._deliver_entries(rooms[key], entries)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or restarting: keep trying
                log.warning("room log reader: %s", exc)
                await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ append / read

    @_unavailable_on_redis_error
    async def append(self, session_id: int, event_type: str, body: bytes) -> Event:
        stream = self._key(session_id, "log")
        after = self._watched.get(session_id, "")
        for _ in range(3):
            if session_id not in self._known_rooms:
                await self.redis.sadd(self._rooms_key, session_id)
            # Called directly, not in a pipeline: a pipeline makes redis-py send SCRIPT EXISTS
            # before every append (a round trip and ~17% of the CPU in the benchmark profile).
            reply = await self._scripts["append"](keys=[stream], args=[STREAM_MAXLEN, after, event_type, body,
                                                                        READ_COUNT, self.origin])
            if reply is None:  # the stream is missing: warm it from the cold store first
                await self._warm(session_id)
                after = self._watched.get(session_id, "")
                continue
            self._known_rooms.add(session_id)
            event = Event(_text(reply[0]), session_id, event_type, body, self.origin)
            epoch = self._ledger.epoch(session_id)
            if epoch is None:
                epoch = _text(await self.redis.get(self._key(session_id, "epoch")) or b"")
                self._note_epoch(session_id, epoch)
            self._ledger.appended(event, epoch)
            if reply[1]:
                self._deliver_entries(session_id, reply[1])
            return event
        raise RedisError(f"could not create the stream of room {session_id}")

    async def _stream_state(self, session_id: int) -> tuple[bool, str, str | None]:
        """(exists, epoch, first id) of the room's stream, warming it if it is missing."""
        stream, epoch_key = self._key(session_id, "log"), self._key(session_id, "epoch")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(stream)
            pipe.get(epoch_key)
            pipe.xrange(stream, "-", "+", count=1)
            exists, epoch, first = await pipe.execute()
        if not exists:
            await self._warm(session_id)
            return await self._stream_state(session_id)
        epoch = _text(epoch or b"0")
        self._note_epoch(session_id, epoch)
        return True, epoch, _text(first[0][0]) if first else None

    @_unavailable_on_redis_error
    async def read(self, session_id: int, since: str | None, limit: int = REPLAY_MAX) -> Catchup:
        _, epoch, first = await self._stream_state(session_id)
        stream = self._key(session_id, "log")
        if since is None:
            entries = await self.redis.xrevrange(stream, "+", "-", count=limit)
            events = [e for e in (self._event(session_id, i, f) for i, f in reversed(entries)) if e]
            return Catchup(events, True)
        since_key = parse_event_id(since)
        # Entries from the epoch on are genuine appends to this stream, contiguous from
        # its first entry on (trimming only takes persisted ones off the front).
        boundary = f"{epoch.split('-')[0]}-0"
        lower = first if first and _key_lt(boundary, first) else boundary
        if first is None and await self.redis.xlen(stream) == 0:
            info = await self.redis.xinfo_stream(stream)
            last_gen = _text(info["last-generated-id"])
            ms, seq = parse_event_id(last_gen)
            lower = f"{ms}-{seq + 1}"  # an emptied stream: everything it had is in the cold store
        cold: list[Event] = []
        if since_key < parse_event_id(lower):
            stored = await self._store.events_after(session_id, since_key, limit + 1, before=parse_event_id(lower))
            mine = self._ledger.unflushed(session_id, since_key, parse_event_id(lower))
            cold = merge_events(stored, mine)
        start = since if since_key >= parse_event_id(lower) else lower
        exclusive = "(" + start if start == since else start
        entries = await self.redis.xrange(stream, exclusive, "+", count=limit + 1)
        events = cold + [e for e in (self._event(session_id, i, f) for i, f in entries) if e and e.key > since_key]
        complete = True
        if len(events) > limit:
            events, complete = events[:limit], False
        source = "cold_store" if cold else "log"
        epoch_ms = int(epoch.split("-")[0])
        if since_key < (epoch_ms, 0) and time.time() * 1000 - epoch_ms < SETTLE_MS:
            complete = False  # Redis lost this room moments ago; the cold store may still be catching up
        last = await self.last_id(session_id)
        if last is not None and since_key > parse_event_id(last):
            complete = False  # a position past the end: not one this log handed out
        return Catchup(events, complete, source)

    @_unavailable_on_redis_error
    async def last_id(self, session_id: int) -> str | None:
        entries = await self.redis.xrevrange(self._key(session_id, "log"), "+", "-", count=1)
        return _text(entries[0][0]) if entries else None

    # ------------------------------------------------------------------ presence

    def _user_key(self, session_id: int, member: str) -> str:
        return self._key(session_id, f"user:{member.split(':', 1)[0]}")

    @_unavailable_on_redis_error
    async def presence_add(self, session_id: int, member: str, info: bytes, change: bytes = b"") -> list[str]:
        now_ms = int(time.time() * 1000)
        keys = [self._key(session_id, "presence"), self._key(session_id, "members"), self._user_key(session_id, member),
                self._key(session_id, "roster_seq"), self._key(session_id, "roster"),
                self._key(session_id, "audience_changes")]
        reply = await self._scripts["presence_add"](
            keys=keys, args=[member, now_ms + PRESENCE_TTL_MS, info, now_ms, ROOM_KEY_TTL_S, change,
                             AUDIENCE_CHANGES_KEEP])
        return [_text(m) for m in reply]

    @_unavailable_on_redis_error
    async def presence_remove(self, session_id: int, member: str, change: bytes = b"") -> bool:
        keys = [self._key(session_id, "presence"), self._key(session_id, "members"), self._user_key(session_id, member),
                self._key(session_id, "roster"), self._key(session_id, "audience_changes")]
        return bool(await self._scripts["presence_remove"](keys=keys, args=[member, change, AUDIENCE_CHANGES_KEEP]))

    @_unavailable_on_redis_error
    async def presence_of(self, session_id: int, user_ids: Iterable[int]) -> dict[str, bytes]:
        keys = [self._key(session_id, "presence"), self._key(session_id, "members")]
        keys += [self._key(session_id, f"user:{uid}") for uid in user_ids]
        if len(keys) == 2:
            return {}
        reply = await self._scripts["presence_of"](keys=keys, args=[int(time.time() * 1000)])
        return {_text(reply[i]): bytes(reply[i + 1]) for i in range(0, len(reply), 2)}

    @_unavailable_on_redis_error
    async def audience_page(self, session_id: int, after: int | None, limit: int) -> AudiencePage:
        keys = [self._key(session_id, "roster"), self._key(session_id, "members")]
        reply = await self._scripts["audience_page"](keys=keys, args=["" if after is None else after, limit])
        following = _text(reply[1])
        return AudiencePage(int(reply[0]), [bytes(e) for e in reply[2:]], int(float(following)) if following else None)

    @_unavailable_on_redis_error
    async def stage(self, session_id: int) -> tuple[set[int], set[int]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._key(session_id, "log"))
            pipe.smembers(self._key(session_id, "speakers"))
            pipe.smembers(self._key(session_id, "hands"))
            exists, speakers, hands = await pipe.execute()
        if not exists:
            await self._warm(session_id)
            return await self.stage(session_id)
        return {int(m) for m in speakers}, {int(m) for m in hands}

    @_unavailable_on_redis_error
    async def audience_news(self, session_id: int, interval_ms: int) -> AudienceNews | None:
        keys = [self._key(session_id, what) for what in ("roster", "audience_changes", "audience_lock", "audience_told")]
        reply = await self._scripts["audience"](keys=keys, args=[interval_ms])
        if reply is None:
            return None
        if not reply:
            count = await self.redis.zcard(keys[0])
            return AudienceNews(int(count), [], False)
        return AudienceNews(int(reply[0]), [bytes(c) for c in reply[1:]], True)

    @_unavailable_on_redis_error
    async def presence(self, session_id: int) -> dict[str, bytes]:
        now_ms = int(time.time() * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self._key(session_id, "presence"), now_ms, "+inf")
            pipe.hgetall(self._key(session_id, "members"))
            alive, info = await pipe.execute()
        return {_text(m): info[m] for m in alive if m in info}

    @_unavailable_on_redis_error
    async def presence_expired(self, session_id: int) -> list[str]:
        now_ms = int(time.time() * 1000)
        stale = await self.redis.zrangebyscore(self._key(session_id, "presence"), "-inf", now_ms)
        removed = []
        for member in stale:
            if await self.presence_remove(session_id, _text(member)):
                removed.append(_text(member))
        return removed

    @_unavailable_on_redis_error
    async def presence_refresh(self, session_id: int, members: list[str]) -> None:
        if not members:
            return
        expiry = int(time.time() * 1000) + PRESENCE_TTL_MS
        await self.redis.zadd(self._key(session_id, "presence"), {m: expiry for m in members}, xx=True)

    # ------------------------------------------------------------------ speakers / hands

    async def _warmed(self, session_id: int) -> None:
        """Warm a room Redis lost before touching its stage, so that the stage is first
        rebuilt from the cold store (and not started afresh, empty)."""
        if not await self.redis.exists(self._key(session_id, "log")):
            await self._warm(session_id)

    @_unavailable_on_redis_error
    async def set_member(self, session_id: int, group: str, user_id: int, present: bool) -> bool:
        await self._warmed(session_id)
        key = self._key(session_id, group)
        if present:
            changed = await self.redis.sadd(key, user_id)
            await self.redis.expire(key, ROOM_KEY_TTL_S)
        else:
            changed = await self.redis.srem(key, user_id)
        return bool(changed)

    @_unavailable_on_redis_error
    async def members(self, session_id: int, group: str) -> set[int]:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._key(session_id, "log"))
            pipe.smembers(self._key(session_id, group))
            exists, members = await pipe.execute()
        if not exists:
            await self._warm(session_id)
            members = await self.redis.smembers(self._key(session_id, group))
        return {int(m) for m in members}

    # ------------------------------------------------------------------ write-behind source

    @_unavailable_on_redis_error
    async def take_unflushed(self, max_events: int) -> list[Event]:
        batch = await self._take_unflushed(max_events - len(self._carry)) if len(self._carry) < max_events else []
        batch = self._carry + batch
        batch, self._carry = batch[:max_events], batch[max_events:]
        return batch

    async def _take_unflushed(self, max_events: int) -> list[Event]:
        batch: list[Event] = self._ledger.orphans(max_events)
        room_ids = [int(r) for r in await self.redis.smembers(self._rooms_key)]
        if not room_ids or len(batch) >= max_events:
            return batch
        # This consumer's own pending entries first (after a wipe or on a retry), then new ones.
        streams = {self._key(sid, "log"): ">" if sid in self._pending_done else "0" for sid in room_ids}
        count = max_events - len(batch)
        try:
            reply = await self.redis.xreadgroup(GROUP, self.consumer, streams, count=count)
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            # A stream the set names is gone (Redis lost it): warm it back rather than drop it
            # from the set, which could race with another process warming it and leave its
            # new events unread by any writer.
            for sid in room_ids:
                if not await self.redis.exists(self._key(sid, "log")):
                    await self._warm(sid)
            return batch
        returned = {}
        for key, entries in reply or []:
            sid = int(_text(key).split("{room:")[1].split("}")[0])
            returned[sid] = len(entries)
            batch += [e for e in (self._event(sid, i, f) for i, f in entries) if e]
        for sid in room_ids:
            if returned.get(sid, 0) < count:
                self._pending_done.add(sid)
        if time.monotonic() - self._last_claim > CLAIM_INTERVAL:
            self._last_claim = time.monotonic()
            batch += await self._claim_abandoned(room_ids, max_events - len(batch))
        return batch

    async def _claim_abandoned(self, room_ids: list[int], room_left: int) -> list[Event]:
        """Entries a dead process read but never flushed; and its consumer, once empty."""
        claimed: list[Event] = []
        for sid in room_ids:
            if room_left <= 0:
                break
            stream = self._key(sid, "log")
            try:
                _, entries, *_ = await self.redis.xautoclaim(stream, GROUP, self.consumer, CLAIM_IDLE_MS,
                                                             start_id="0-0", count=room_left)
                for info in await self.redis.xinfo_consumers(stream, GROUP):
                    name = _text(info["name"])
                    if name != self.consumer and info["pending"] == 0 and info.get("idle", 0) > CLAIM_IDLE_MS * 6:
                        await self.redis.xgroup_delconsumer(stream, GROUP, name)
            except ResponseError:
                continue
            events = [e for e in (self._event(sid, i, f) for i, f in entries) if e]
            room_left -= len(events)
            claimed += events
        return claimed

    @_unavailable_on_redis_error
    async def mark_flushed(self, events: list[Event]) -> None:
        by_room: dict[int, list[str]] = {}
        for event in events:
            if not self._ledger.flushed(event):
                by_room.setdefault(event.session_id, []).append(event.id)
        if not by_room:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, ids in by_room.items():
                pipe.xack(self._key(sid, "log"), GROUP, *ids)
            await pipe.execute()

    @_unavailable_on_redis_error
    async def ping(self) -> None:
        await self.redis.ping()

    async def backlog(self) -> int:
        return len(self._ledger)

    def oldest_unflushed_ms(self) -> int | None:
        return self._ledger.oldest_ms()

    async def _watermark_loop(self) -> None:
        """Let go of own events the group has persisted; notice wiped rooms; trim streams."""
        while not self._closing:
            await asyncio.sleep(WATERMARK_INTERVAL)
            try:
                await self._check_watermarks()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("room log watermark: %s", exc)

    async def _check_watermarks(self) -> None:
        rooms = self._ledger.rooms() | set(self._watched)
        for sid in rooms:
            stream = self._key(sid, "log")
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(self._key(sid, "epoch"))
                pipe.exists(stream)
                epoch, exists = await pipe.execute()
            if not exists:
                if sid in self._watched:
                    await self._warm(sid)
                else:
                    # Nobody here watches the room; still, its events must not wait on a warm.
                    self._note_epoch(sid, f"lost-{time.time()}")
                continue
            self._note_epoch(sid, _text(epoch or b""))
            try:
                groups = await self.redis.xinfo_groups(stream)
                pending = await self.redis.xpending(stream, GROUP)
            except ResponseError:
                continue
            delivered = next((_text(g["last-delivered-id"]) for g in groups if _text(g["name"]) == GROUP), None)
            if delivered is None:
                continue
            delivered_key = parse_event_id(delivered)
            min_pending = parse_event_id(_text(pending["min"])) if pending["pending"] else None
            # The group says these are done; the cold store has the last word. An event the
            # group skipped without ever holding it (trimmed by the MAXLEN guard, lost in a
            # partial Redis rollback) is not there: this process writes it itself.
            # The group says these are done; the cold store has the last word. An event the
            # group skipped without ever holding it (trimmed by the MAXLEN guard, lost in a
            # partial Redis rollback) is not there: this process writes it itself.
            done = self._ledger.settled(sid, delivered_key, min_pending)
            # Long overdue and still not done: the stream may have lost it past the group's
            # position (a rollback of the room's last events, with nothing appended since).
            overdue = self._ledger.overdue(sid, int(time.time() * 1000) - OWN_EVENT_OVERDUE_MS, done)
            if overdue:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for ev in overdue:
                        pipe.xrange(stream, ev.id, ev.id)
                    in_stream = await pipe.execute()
                done += [ev for ev, found in zip(overdue, in_stream) if not found]
            if done:
                stored = await self._store.stored_event_ids(sid, min(e.key for e in done), max(e.key for e in done))
                for ev in self._ledger.release(sid, done, stored):
                    log.warning("room %s: event %s never reached the cold store; writing it", sid, ev.id)
            await self._scripts["trim"](keys=[stream], args=[self._history_keep])
