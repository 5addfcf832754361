"""One contract for the RoomLog interface, run against both implementations.

"embedded":   MemoryRoomLog over the SQLite store (the default).
"production": RedisRoomLog over real Redis (the test's own key prefix, deleted after it)
              and the real MariaDB store.

Each test builds fresh log instances of the app's kind on the app's store and prefix (so a
second instance stands for a second server process) and closes them at the end. The app's
own log (``services.rooms.room_log``) keeps running; on Redis its write-behind is a consumer of
the same group and flushes the test logs' events too, unless a test stops it first.
Tests marked "Redis only" skip on the in-process log, which has no second process, no
wipe and no crash to survive.

Closing: a single task.cancel() can be swallowed here (redis-py sends inside
asyncio.wait_for; Python 3.11's wait_for drops a cancel that races a completing send), so
RedisRoomLog.close() and WriteBehind.close() can hang for ever. Two tests check exactly
that; everywhere else (and before the services fixture's teardown) the background tasks
are re-cancelled until done first, so one bug does not hang the whole run.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any, Awaitable, Callable

import orjson
import pytest
import redis.asyncio as aioredis

from ask2live.cache import redis_log
from ask2live.cache.memory import MemoryRoomLog
from ask2live.cache.redis_log import GROUP, RedisRoomLog
from ask2live.cache.roomlog import RoomLog
from ask2live.events import Event, parse_event_id, valid_event_id
from ask2live.timeutil import utcnow
from conftest import PRODUCTION, REDIS_URL

pytestmark = pytest.mark.gen_test(timeout=20)

UNICODE_TEXT = "안녕하세요, 질문 있어요! 👋🏽🎉 ñ ✓ 𝄞"


# ---------------------------------------------------------------------------- helpers


class Recorder:
    """A deliver callback that remembers every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, list[Event]]] = []

    def __call__(self, session_id: int, events: list[Event]) -> None:
        self.calls.append((session_id, list(events)))

    def events(self, session_id: int) -> list[Event]:
        return [e for sid, evs in self.calls if sid == session_id for e in evs]

    def ids(self, session_id: int) -> list[str]:
        return [e.id for e in self.events(session_id)]

    def rooms(self) -> set[int]:
        return {sid for sid, _ in self.calls}


class Kit:
    """Builds log instances of the app's kind over the app's store (and Redis prefix)."""

    def __init__(self, services: Any, config: Any, setup: str) -> None:
        self.services = services
        self.store = services.store
        self.config = config
        self.kind = "redis" if setup == PRODUCTION else "memory"
        self._open: list[RoomLog] = []
        self.redis = aioredis.from_url(REDIS_URL) if self.kind == "redis" else None

    def redis_only(self) -> None:
        if self.kind != "redis":
            pytest.skip("Redis only: the in-process log has one process and nothing to wipe")

    async def log(self, history_keep: int | None = None, consumer: str | None = None) -> tuple[RoomLog, Recorder]:
        kw: dict[str, Any] = {} if history_keep is None else {"history_keep": history_keep}
        log: RoomLog
        if self.kind == "redis":
            log = RedisRoomLog(REDIS_URL, self.store, prefix=self.config.redis_prefix, consumer=consumer, **kw)
        else:
            log = MemoryRoomLog(self.store, **kw)
        recorder = Recorder()
        await log.start(recorder)
        self._open.append(log)
        return log, recorder

    async def close(self, log: RoomLog) -> None:
        """Close a log. Works around the close() hang of RedisRoomLog (a reader task whose
        cancellation was swallowed; see test_close_returns_promptly_after_a_delivery, which
        is the one test that checks close() itself) so that other tests stay meaningful."""
        self._open.remove(log)
        await force_stop_tasks(log)
        await log.close()

    async def aclose(self) -> None:
        for log in list(self._open):
            await self.close(log)
        if self.redis is not None:
            await self.redis.aclose()

    def key(self, session_id: int, what: str) -> str:
        """The documented key layout: ``<prefix>:{room:<id>}:<what>``."""
        return f"{self.config.redis_prefix}:{{room:{session_id}}}:{what}"

    async def wipe(self, session_id: int) -> None:
        """What a Redis restart without persistence does to one room's stream."""
        assert self.redis is not None
        await self.redis.delete(self.key(session_id, "log"), self.key(session_id, "epoch"))

    async def stored(self, session_id: int) -> list[Event]:
        return await self.store.events_after(session_id, (0, -1), 1_000_000)

    async def stored_ids(self, session_id: int) -> list[str]:
        return [e.id for e in await self.stored(session_id)]

    async def persist(self, log: RoomLog, session_id: int, ids: list[str], timeout: float = 8.0) -> None:
        """Wait until these events are in the cold store. The test's in-process logs have
        no write-behind of their own, so they are drained here; on Redis the app's
        write-behind (same consumer group) flushes them."""
        wanted = set(ids)

        async def done() -> bool:
            if self.kind == "memory":
                await drain(self.store, log)
            return wanted <= set(await self.stored_ids(session_id))

        assert await eventually(done, timeout), (ids, await self.stored_ids(session_id))


@pytest.fixture
def kit(io_loop: Any, services: Any, config: Any, setup: str) -> Any:
    k = Kit(services, config, setup)
    yield k
    io_loop.run_sync(k.aclose)
    # The services fixture's teardown closes the app's write-behind and room log with one
    # cancel() each, which can be swallowed (see the two *_close_returns_promptly tests)
    # and would then hang the run for ever; stop their loops first, the same way.
    io_loop.run_sync(lambda: stop_app_tasks(services))


async def force_stop_tasks(what: Any, timeout: float = 10.0) -> bool:
    """Cancel tasks (or a Redis log's background tasks) until they are done, re-cancelling,
    as one cancel can be swallowed; True if one cancel was not enough."""
    tasks = list(what) if isinstance(what, list) else list(getattr(what, "_tasks", []))
    deadline = time.monotonic() + timeout
    rounds = 0
    while time.monotonic() < deadline:
        pending = [t for t in tasks if not t.done()]
        if not pending:
            break
        rounds += 1
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=0.1)
    return rounds > 1


async def stop_app_tasks(services: Any) -> None:
    """Stop the app's background loops (write-behind, presence, room log) robustly; their
    own close() then only does the rest (the write-behind's final flush included)."""
    tasks = [t for t in (services.write_behind._task, services.rooms.hub._task) if t is not None]
    tasks += list(getattr(services.rooms.room_log, "_tasks", []))
    await force_stop_tasks(tasks)


async def stop_app_write_behind(services: Any) -> None:
    """For tests that are the write-behind themselves. WriteBehind.close() alone can hang
    (test_write_behind_close_returns_promptly), so its task is stopped first."""
    if services.write_behind._task is not None:
        await force_stop_tasks([services.write_behind._task])
    await services.write_behind.close()


def new_room() -> int:
    return secrets.randbelow(10**12) + 1


def body(i: int, **extra: Any) -> bytes:
    return orjson.dumps({"type": "chat", "n": i, "text": f"{UNICODE_TEXT} #{i}", **extra})


async def append_n(log: RoomLog, session_id: int, n: int, start: int = 0) -> list[Event]:
    return [await log.append(session_id, "chat", body(start + i)) for i in range(n)]


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.05) -> Any:
    """Poll ``check`` (sync or async) until it is truthy; its last value otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)


async def drain(store: Any, log: RoomLog, max_events: int = 500) -> list[Event]:
    """One write-behind pass done by hand: take, insert, mark; what it wrote."""
    written: list[Event] = []
    for _ in range(20):
        batch = await log.take_unflushed(max_events)
        if not batch:
            break
        await store.insert_events(batch, utcnow())
        await log.mark_flushed(batch)
        written += batch
    return written


def ids_of(events: list[Event]) -> list[str]:
    return [e.id for e in events]


def assert_same_events(got: list[Event], expected: list[Event]) -> None:
    assert [(e.id, e.session_id, e.type, e.body) for e in got] == \
           [(e.id, e.session_id, e.type, e.body) for e in expected]


# ---------------------------------------------------------------------------- set-up


async def test_fixture_runs_the_expected_implementation(kit, services):
    expected = RedisRoomLog if kit.kind == "redis" else MemoryRoomLog
    assert isinstance(services.rooms.room_log, expected)
    log, _ = await kit.log()
    assert isinstance(log, expected)


# ---------------------------------------------------------------------------- append / ids / bodies


async def test_append_returns_redis_style_ids_strictly_increasing_per_room(kit):
    log, _ = await kit.log()
    a, b = new_room(), new_room()
    assert await log.last_id(a) is None
    events = []
    for i in range(30):  # interleaved rooms, many appends inside one millisecond
        events.append(await log.append(a if i % 3 else b, "chat", body(i)))
    sequential = list(events)
    # concurrent appends: the log orders them (gather's order is the call order, not the log's)
    concurrent = await asyncio.gather(*(log.append(a, "chat", body(100 + i)) for i in range(30)))
    assert all(e.key > sequential[-1].key for e in concurrent if e.session_id == a)
    events = sorted(sequential + list(concurrent), key=lambda e: e.key)
    for e in events:
        assert valid_event_id(e.id), e.id
        ms, seq = parse_event_id(e.id)
        assert abs(ms - time.time() * 1000) < 60_000 and seq >= 0
    for sid in (a, b):
        mine = [e for e in events if e.session_id == sid]
        keys = [e.key for e in mine]
        assert keys == sorted(keys) and len(set(keys)) == len(keys)
        assert await log.last_id(sid) == mine[-1].id
        assert ids_of((await log.read(sid, None, 1000)).events) == ids_of(mine)


async def test_event_body_round_trips_unicode_bytes_through_log_and_cold_store(kit):
    log, _ = await kit.log()
    sid = new_room()
    bodies = [body(0), orjson.dumps({"text": "😀" * 50 + "한글" * 50}), b"{}",
              orjson.dumps({"nested": {"q": "왜요?", "list": [1, "🚀", None]}})]
    appended = [await log.append(sid, "chat", b) for b in bodies]
    assert [e.body for e in appended] == bodies
    assert all(e.session_id == sid and e.type == "chat" for e in appended)
    assert_same_events((await log.read(sid, None)).events, appended)
    await kit.persist(log, sid, ids_of(appended))
    assert_same_events(await kit.stored(sid), appended)
    # and back out of the cold store through a fresh instance (a restarted process)
    fresh, _ = await kit.log()
    assert_same_events((await fresh.read(sid, None)).events, appended)


async def test_to_json_bytes_is_valid_json_with_id_first_then_the_body_fields(kit):
    log, _ = await kit.log()
    sid = new_room()
    fields = {"type": "chat", "text": UNICODE_TEXT, "user": {"id": 7, "name": "김철수"}, "ts": 1}
    event = await log.append(sid, "chat", orjson.dumps(fields))
    decoded = orjson.loads(event.to_json_bytes())
    assert list(decoded)[0] == "id"
    assert decoded == {"id": event.id, **fields}
    empty = await log.append(sid, "ping", b"{}")
    assert orjson.loads(empty.to_json_bytes()) == {"id": empty.id}
    assert empty.to_json_bytes() == b'{"id":"' + empty.id.encode() + b'"}'


# ---------------------------------------------------------------------------- watch / deliver


async def test_watch_delivers_each_appended_event_once_in_id_order(kit):
    log, rec = await kit.log()
    sid = new_room()
    log.watch(sid, await log.last_id(sid))
    appended = []
    for i in range(10):
        event = await log.append(sid, "chat", body(i))
        appended.append(event)
        # "the room's watchers have been delivered it, and every earlier event, on return"
        assert rec.ids(sid) == ids_of(appended)
    appended += await asyncio.gather(*(log.append(sid, "chat", body(100 + i)) for i in range(40)))
    appended.sort(key=lambda e: e.key)
    await asyncio.sleep(0.3)  # let a background reader deliver anything twice, if it would
    assert rec.ids(sid) == ids_of(appended)
    assert_same_events(rec.events(sid), appended)


async def test_watch_from_a_position_delivers_events_appended_after_it_before_the_watch(kit):
    """``watch(room, after)``: the room's events after ``after`` are delivered, including
    ones appended between reading that position and calling watch (the live room reads
    ``last_id`` and then watches, with an await in between)."""
    log, rec = await kit.log()
    sid = new_room()
    await append_n(log, sid, 3)
    position = await log.last_id(sid)
    missed = await append_n(log, sid, 2, start=3)
    log.watch(sid, position)
    later = await log.append(sid, "chat", body(5))
    await eventually(lambda: len(rec.ids(sid)) >= 3, 2.0)
    await asyncio.sleep(0.2)
    assert rec.ids(sid) == ids_of(missed + [later]), f"missed {ids_of(missed)}, later {later.id}"


async def test_unwatched_rooms_are_not_delivered(kit):
    log, rec = await kit.log()
    watched, other = new_room(), new_room()
    log.watch(watched, await log.last_id(watched))
    await log.append(other, "chat", body(0))
    mine = await log.append(watched, "chat", body(1))
    await log.append(other, "chat", body(2))
    await asyncio.sleep(0.3)
    assert rec.rooms() == {watched}
    assert rec.ids(watched) == [mine.id]
    log.unwatch(watched)
    await asyncio.sleep(0.1)
    await append_n(log, watched, 3, start=10)
    await asyncio.sleep(0.3)
    assert rec.ids(watched) == [mine.id]


async def test_events_from_another_instance_reach_the_watcher_in_order(kit):
    """Redis only: two RedisRoomLog instances on one prefix are two server processes."""
    kit.redis_only()
    other, _ = await kit.log()
    sid = new_room()
    watcher, rec = await kit.log()
    # watch before the reader's first XREAD (no await in between): see the next test
    watcher.watch(sid, None)
    started = time.monotonic()
    theirs = await append_n(other, sid, 10)
    assert await eventually(lambda: len(rec.ids(sid)) >= 10, 8.0), rec.ids(sid)
    first_latency = time.monotonic() - started
    # both processes appending at once: one order, each event once, the log's ids
    both = await asyncio.gather(*(other.append(sid, "chat", body(100 + i)) for i in range(15)),
                                *(watcher.append(sid, "chat", body(200 + i)) for i in range(15)))
    expected = sorted(theirs + list(both), key=lambda e: e.key)
    assert await eventually(lambda: len(rec.ids(sid)) >= len(expected), 8.0)
    await asyncio.sleep(0.3)
    assert_same_events(rec.events(sid), expected)
    assert ids_of((await other.read(sid, None)).events) == ids_of(expected)
    # the reader blocks in XREAD and is woken by watch(): delivery is not a poll interval away
    assert first_latency < 2.0, f"first cross-process delivery took {first_latency:.1f} s"


async def test_a_watch_made_soon_after_start_reaches_the_reader_promptly(kit):
    """Redis only: watch() wakes the reader through the per-process wake stream, but the
    reader's first XREAD reads that stream from "$": a wake that reaches Redis before the
    reader's first XREAD (its connection is still being opened) is lost, and the room is
    not read until the idle XREAD BLOCK (READ_BLOCK_MS, 5 s) ends."""
    kit.redis_only()
    other, _ = await kit.log()
    sid = new_room()
    await other.append(sid, "chat", body(0))
    position = await other.last_id(sid)
    slow = []
    for attempt in range(3):
        watcher, rec = await kit.log()
        await asyncio.sleep(0)  # the reader task starts; then the room is watched
        watcher.watch(sid, position)
        await asyncio.sleep(0.1)
        started = time.monotonic()
        event = await other.append(sid, "chat", body(attempt + 1))
        delivered = await eventually(lambda: event.id in rec.ids(sid), 1.5)
        await kit.close(watcher)
        position = event.id
        if not delivered:
            slow.append(attempt)
            break
    assert not slow, "another process's event was not delivered within 1.5 s of its append"


async def test_close_returns_promptly_while_the_reader_is_busy(kit):
    """Redis only: close() must end the reader task. The reader's connection has a socket
    timeout, so redis-py sends each XREAD inside ``asyncio.wait_for``; on Python < 3.12 a
    cancel landing just as that send completes is swallowed (CPython gh-86296), and
    ``_read_loop`` (``while True``) runs on, so close() waits on it for ever. A wake (a new
    watch) makes the reader send a new XREAD; close() is tried a few loop steps later."""
    kit.redis_only()
    hung = []
    for steps in range(12):
        log, _ = await kit.log()
        log.watch(new_room(), None)
        await asyncio.sleep(0.03)
        log.watch(new_room(), None)  # wakes the reader, which sends a new XREAD
        for _ in range(steps):
            await asyncio.sleep(0)
        closing = asyncio.ensure_future(log.close())
        done, _ = await asyncio.wait([closing], timeout=0.5)
        if not done:
            hung.append(steps)
            await force_stop_tasks(log)
            await closing
        kit._open.remove(log)
        if hung:
            break
    assert not hung, f"RedisRoomLog.close() hung (closed {hung[0]} loop steps after a wake)"


# ---------------------------------------------------------------------------- read


async def test_read_latest_returns_the_most_recent_limit_events_oldest_first(kit):
    log, _ = await kit.log()
    sid = new_room()
    assert (await log.read(sid, None))[:2] == ([], True)
    appended = await append_n(log, sid, 12)
    latest = await log.read(sid, None, 5)
    assert_same_events(latest.events, appended[-5:])
    assert latest.complete
    assert ids_of((await log.read(sid, None, 100)).events) == ids_of(appended)
    # another instance (process) sees the same history
    other, _ = await kit.log()
    if kit.kind == "memory":  # its history comes from the cold store
        await kit.persist(log, sid, ids_of(appended))
    assert ids_of((await other.read(sid, None, 5)).events) == ids_of(appended[-5:])


async def test_read_since_returns_exactly_the_events_after_it(kit):
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 10)
    for i, since in enumerate(appended):
        catchup = await log.read(sid, since.id)
        assert catchup.complete, i
        assert_same_events(catchup.events, appended[i + 1:])
    assert (await log.read(sid, appended[-1].id))[:2] == ([], True)


async def test_read_since_older_than_the_log_holds_falls_back_to_the_cold_store(kit):
    sid = new_room()
    if kit.kind == "memory":
        log, _ = await kit.log(history_keep=5)
        appended = await append_n(log, sid, 12)
        # not flushed yet: the gap is still waiting for the write-behind
        catchup = await log.read(sid, appended[1].id)
        assert catchup.complete
        assert_same_events(catchup.events, appended[2:])
        await kit.persist(log, sid, ids_of(appended))
    else:
        log, _ = await kit.log()
        appended = await append_n(log, sid, 12)
        await kit.persist(log, sid, ids_of(appended))
        # the stream keeps the last 3 only; the rest is in MariaDB
        await kit.redis.xtrim(kit.key(sid, "log"), maxlen=3, approximate=False)
        assert await kit.redis.xlen(kit.key(sid, "log")) == 3
    for i in (0, 1, 4, 6, 8, 10):
        catchup = await log.read(sid, appended[i].id)
        assert catchup.complete, i
        assert_same_events(catchup.events, appended[i + 1:])
    assert (await log.read(sid, appended[1].id, 4))[:2] == (appended[2:6], False)


async def test_read_since_after_the_stream_was_trimmed_empty_falls_back_to_the_cold_store(kit):
    """Redis only: ``XTRIM MAXLEN 0`` after the flush leaves an existing, empty stream."""
    kit.redis_only()
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 8)
    await kit.persist(log, sid, ids_of(appended))
    await kit.redis.xtrim(kit.key(sid, "log"), maxlen=0, approximate=False)
    assert await kit.redis.exists(kit.key(sid, "log"))
    catchup = await log.read(sid, appended[2].id)
    assert_same_events(catchup.events, appended[3:])
    assert catchup.complete


async def test_read_since_beyond_the_last_id_is_incomplete(kit):
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 3)
    ms, seq = appended[-1].key
    for beyond in (f"{ms}-{seq + 1}", f"{ms + 60_000}-0"):
        catchup = await log.read(sid, beyond)
        assert catchup[:2] == ([], False), beyond


async def test_read_needing_more_than_limit_events_is_incomplete(kit):
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 10)
    catchup = await log.read(sid, appended[0].id, 4)
    assert catchup[:2] == (appended[1:5], False)
    assert (await log.read(sid, appended[4].id, 5))[:2] == (appended[5:], True)


async def test_a_wiped_room_is_rewarmed_from_the_cold_store(kit):
    """Redis only: the stream and epoch keys vanish (Redis restarted without persistence)."""
    kit.redis_only()
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 6)
    await kit.persist(log, sid, ids_of(appended))
    await kit.wipe(sid)
    reader, _ = await kit.log()
    latest = await reader.read(sid, None)
    assert latest.complete
    assert_same_events(latest.events, appended)
    entries = await kit.redis.xrange(kit.key(sid, "log"))
    assert [i.decode() for i, _ in entries] == ids_of(appended)
    assert await kit.redis.exists(kit.key(sid, "epoch"))
    # appends go on after the cold history, and are delivered in that order
    more = await append_n(reader, sid, 2, start=6)
    assert all(m.key > appended[-1].key for m in more)
    assert ids_of((await log.read(sid, None)).events) == ids_of(appended + more)


async def test_a_resume_across_a_wipe_is_incomplete_within_the_settle_window(kit):
    kit.redis_only()
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 6)
    await kit.persist(log, sid, ids_of(appended))
    await kit.wipe(sid)
    reader, _ = await kit.log()
    catchup = await reader.read(sid, appended[1].id)
    assert not catchup.complete
    # what it does return is still in order, without repeats, and from the right place
    assert ids_of(catchup.events) == ids_of(appended[2:2 + len(catchup.events)])


# ---------------------------------------------------------------------------- presence


async def test_presence_lists_members_with_their_info(kit):
    log, _ = await kit.log()
    sid = new_room()
    assert await log.presence(sid) == {}
    info1 = orjson.dumps({"user": {"id": 1, "name": "지민 🎤"}, "role": "host"})
    info2 = orjson.dumps({"user": {"id": 2}, "role": "listener"})
    await log.presence_add(sid, "1:aaa", info1)
    await log.presence_add(sid, "2:bbb", info2)
    await log.presence_add(new_room(), "3:ccc", b"{}")
    assert await log.presence(sid) == {"1:aaa": info1, "2:bbb": info2}
    assert await log.presence_remove(sid, "2:bbb") is True
    assert await log.presence(sid) == {"1:aaa": info1}


async def test_presence_remove_is_true_exactly_once_for_concurrent_removers(kit):
    log, _ = await kit.log()
    sid = new_room()
    for round_ in range(5):
        member = f"{round_}:conn"
        await log.presence_add(sid, member, b'{"x":1}')
        results = await asyncio.gather(log.presence_remove(sid, member), log.presence_remove(sid, member))
        assert sorted(results) == [False, True], results
        assert member not in await log.presence(sid)
    assert await log.presence_remove(sid, "never:there") is False
    if kit.kind == "redis":  # two processes racing to tell the same leave
        other, _ = await kit.log()
        await log.presence_add(sid, "9:x", b"{}")
        results = await asyncio.gather(log.presence_remove(sid, "9:x"), other.presence_remove(sid, "9:x"))
        assert sorted(results) == [False, True], results


async def test_presence_refresh_does_not_bring_back_a_removed_member(kit):
    log, _ = await kit.log()
    sid = new_room()
    await log.presence_add(sid, "1:a", b'{"a":1}')
    await log.presence_add(sid, "2:b", b'{"b":2}')
    assert await log.presence_remove(sid, "2:b")
    await log.presence_refresh(sid, ["1:a", "2:b"])
    await log.presence_refresh(sid, [])
    assert await log.presence(sid) == {"1:a": b'{"a":1}'}
    assert await log.presence_expired(sid) == []


async def test_presence_expired_removes_members_past_their_expiry_once(kit):
    """Redis only: a crashed process stops refreshing its members; they expire."""
    kit.redis_only()
    log, _ = await kit.log()
    other, _ = await kit.log()
    sid = new_room()
    await log.presence_add(sid, "1:alive", b'{"u":1}')
    await log.presence_add(sid, "2:dead", b'{"u":2}')
    await log.presence_add(sid, "3:dead", b'{"u":3}')
    old = int(time.time() * 1000) - 1_000
    await kit.redis.zadd(kit.key(sid, "presence"), {"2:dead": old, "3:dead": old - 5})
    assert await log.presence(sid) == {"1:alive": b'{"u":1}'}
    first, second = await asyncio.gather(log.presence_expired(sid), other.presence_expired(sid))
    assert sorted(first + second) == ["2:dead", "3:dead"]
    assert await log.presence_expired(sid) == []
    assert await log.presence_remove(sid, "2:dead") is False
    assert await kit.redis.hkeys(kit.key(sid, "members")) == [b"1:alive"]


async def test_presence_add_returns_the_users_connections_oldest_first(kit):
    log, _ = await kit.log()
    sid = new_room()
    assert await log.presence_add(sid, "1:a", b"{}") == ["1:a"]
    assert await log.presence_add(sid, "2:x", b"{}") == ["2:x"]
    assert await log.presence_add(sid, "1:b", b"{}") == ["1:a", "1:b"]
    assert await log.presence_remove(sid, "1:a")
    assert await log.presence_add(sid, "1:c", b"{}") == ["1:b", "1:c"]
    assert await log.presence_add(new_room(), "1:z", b"{}") == ["1:z"]


async def test_presence_of_costs_the_users_not_the_room(kit):
    log, _ = await kit.log()
    sid = new_room()
    for n in range(30):
        await log.presence_add(sid, f"{100 + n}:c{n}", orjson.dumps({"n": n}))
    await log.presence_add(sid, "7:one", b'{"who":"7a"}')
    await log.presence_add(sid, "7:two", b'{"who":"7b"}')
    await log.presence_add(sid, "8:only", b'{"who":"8"}')
    assert await log.presence_of(sid, [7, 8, 9]) == {"7:one": b'{"who":"7a"}', "7:two": b'{"who":"7b"}',
                                                     "8:only": b'{"who":"8"}'}
    assert await log.presence_of(sid, []) == {}
    await log.presence_remove(sid, "7:one")
    assert await log.presence_of(sid, [7]) == {"7:two": b'{"who":"7b"}'}


async def test_stage_is_the_speakers_and_the_raised_hands(kit):
    log, _ = await kit.log()
    sid = new_room()
    assert await log.stage(sid) == (set(), set())
    await log.set_member(sid, "speakers", 4, True)
    await log.set_member(sid, "hands", 5, True)
    await log.set_member(sid, "hands", 6, True)
    assert await log.stage(sid) == ({4}, {5, 6})


async def test_the_audience_pages_in_join_order_each_member_once(kit):
    log, _ = await kit.log()
    sid = new_room()
    members = [f"{n}:c{n}" for n in range(7)]
    for m in members:
        await log.presence_add(sid, m, orjson.dumps({"m": m}))
    await log.presence_remove(sid, members[2])
    seen, after = [], None
    while True:
        page = await log.audience_page(sid, after, 2)
        assert page.count == 6
        seen += [orjson.loads(e)["m"] for e in page.entries]
        if page.next is None:
            break
        after = page.next
    assert seen == [m for m in members if m != members[2]]
    empty = await log.audience_page(new_room(), None, 5)
    assert (empty.count, empty.entries, empty.next) == (0, [], None)


async def test_audience_news_is_one_per_interval_with_the_changes_since_the_last(kit):
    log, _ = await kit.log()
    sid = new_room()
    await log.presence_add(sid, "1:a", b"{}", b'{"joined":1}')
    await log.presence_add(sid, "2:b", b"{}", b'{"joined":2}')
    await log.presence_add(sid, "3:stage", b"{}")  # counted, not listed
    news = await log.audience_news(sid, 60_000)
    assert (news.count, news.changes, news.new) == (3, [b'{"joined":1}', b'{"joined":2}'], True)
    await log.presence_remove(sid, "1:a", b'{"left":1}')
    assert await log.audience_news(sid, 60_000) is None  # the interval runs: ask again later
    if kit.kind == "redis":  # over every process: another log instance is held back too
        other, _ = await kit.log()
        assert await other.audience_news(sid, 60_000) is None
    quiet = new_room()
    await log.presence_add(quiet, "1:q", b"{}", b'{"joined":"q"}')
    assert (await log.audience_news(quiet, 1)).new is True
    await asyncio.sleep(0.01)
    unchanged = await log.audience_news(quiet, 1)
    assert (unchanged.count, unchanged.changes, unchanged.new) == (1, [], False)


async def test_notify_reaches_every_log_instance_including_its_own(kit):
    heard: list[bytes] = []
    log, _ = await kit.log()
    await log.close()
    await log.start(lambda sid, events: None, heard.append)
    others = []
    if kit.kind == "redis":
        other, _ = await kit.log()
        await other.close()
        other_heard: list[bytes] = []
        await other.start(lambda sid, events: None, other_heard.append)
        others.append(other_heard)
        await asyncio.sleep(0.3)  # the subscriptions are up (pub/sub keeps nothing for late comers)
    await log.notify(b'{"kind":"test"}')
    for _ in range(50):
        if heard and all(others):
            break
        await asyncio.sleep(0.05)
    assert heard == [b'{"kind":"test"}']
    assert all(o == [b'{"kind":"test"}'] for o in others)


# ---------------------------------------------------------------------------- speakers / hands


async def test_set_member_returns_true_only_when_it_changes_the_group(kit):
    log, _ = await kit.log()
    sid = new_room()
    for group in ("speakers", "hands"):
        assert await log.members(sid, group) == set()
        assert await log.set_member(sid, group, 5, True) is True
        assert await log.set_member(sid, group, 5, True) is False
        assert await log.set_member(sid, group, 6, True) is True
        assert await log.members(sid, group) == {5, 6}
        assert await log.set_member(sid, group, 7, False) is False
        assert await log.set_member(sid, group, 5, False) is True
        assert await log.set_member(sid, group, 5, False) is False
        assert await log.members(sid, group) == {6}
    # the groups and rooms are separate sets
    assert await log.set_member(sid, "hands", 6, False) is True
    assert await log.members(sid, "speakers") == {6}
    assert await log.members(sid, "hands") == set()
    assert await log.members(new_room(), "speakers") == set()
    results = await asyncio.gather(*(log.set_member(sid, "hands", 9, True) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]


# ---------------------------------------------------------------------------- write-behind source


async def test_take_unflushed_then_mark_flushed_persists_each_event_once_and_clears_backlog(kit):
    await stop_app_write_behind(kit.services)  # this test is the write-behind
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 6)
    assert await log.backlog() == 6
    taken: list[Event] = []

    async def take_all() -> bool:
        batch = await log.take_unflushed(500)
        if batch:
            await kit.store.insert_events(batch, utcnow())
            await log.mark_flushed(batch)
            taken.extend(batch)
        return set(ids_of(appended)) <= set(ids_of(taken))

    assert await eventually(take_all, 5.0), ids_of(taken)
    by_id = {e.id: e for e in taken}
    assert_same_events([by_id[e.id] for e in appended], appended)
    assert await eventually(lambda: _is_zero(log.backlog()), 5.0), "backlog never dropped to 0"
    assert_same_events(await kit.stored(sid), appended)
    assert await kit.store.count_events(sid) == 6
    # once flushed, they do not come out again
    again = await log.take_unflushed(500)
    assert not set(ids_of(again)) & set(ids_of(appended))


async def _is_zero(value: Awaitable[int]) -> bool:
    return (await value) == 0


async def test_take_unflushed_returns_at_most_max_events(kit):
    """The write-behind's batch bound keeps one INSERT under max_allowed_packet."""
    await stop_app_write_behind(kit.services)
    log, _ = await kit.log()
    rooms = [new_room() for _ in range(3)]
    for sid in rooms:
        await append_n(log, sid, 5)
    seen: list[Event] = []
    for _ in range(20):
        batch = await log.take_unflushed(4)
        assert len(batch) <= 4, f"take_unflushed(4) returned {len(batch)} events"
        seen += batch
        await kit.store.insert_events(batch, utcnow())
        await log.mark_flushed(batch)
        if len({e.id for e in seen}) >= 15:
            break
    assert len({(e.session_id, e.id) for e in seen}) == 15


async def test_write_behind_close_returns_promptly(kit, services):
    """Shutdown: WriteBehind.close() cancels its loop once and awaits it. On Redis the loop
    spends its time in redis-py commands, whose send runs inside ``asyncio.wait_for`` (the
    connection has a socket timeout); on Python < 3.12 a cancel landing as that send
    completes is swallowed (CPython gh-86296), ``_run`` (``while True``) goes on, and
    close() never returns. Here: the fixture's loop paused the task mid-send."""
    closing = asyncio.ensure_future(services.write_behind.close())
    done, _ = await asyncio.wait([closing], timeout=2.0)
    if not done:
        await force_stop_tasks([services.write_behind._task])
        await closing
    assert done, "WriteBehind.close() hung: its task kept running after cancel()"


async def test_the_apps_write_behind_puts_each_event_in_the_store_once(kit, services):
    log = services.rooms.room_log
    sid = new_room()
    appended = await append_n(log, sid, 20)
    appended += await asyncio.gather(*(log.append(sid, "chat", body(100 + i)) for i in range(20)))
    appended.sort(key=lambda e: e.key)
    assert await eventually(lambda: _is_zero(log.backlog()), 8.0), "backlog never dropped to 0"
    assert_same_events(await kit.stored(sid), appended)
    assert await kit.store.count_events(sid) == 40


async def test_a_wiped_streams_unflushed_events_are_written_by_their_appender(kit):
    """Redis only, durability: A appended, then Redis lost the stream before any flush.
    A notices (watermark loop, ~1 s) and hands its events out as orphans."""
    kit.redis_only()
    await stop_app_write_behind(kit.services)  # nothing flushes before the wipe
    a, _ = await kit.log()
    sid = new_room()
    appended = await append_n(a, sid, 5)
    await kit.wipe(sid)
    written: list[Event] = []

    async def flushed_all() -> bool:
        written.extend(await drain(kit.store, a))
        return set(ids_of(appended)) <= set(ids_of(written))

    assert await eventually(flushed_all, 6.0), ids_of(written)
    assert_same_events(await kit.stored(sid), appended)
    assert await eventually(lambda: _is_zero(a.backlog()), 3.0)
    assert await kit.store.count_events(sid) == 5


async def test_a_wiped_streams_events_survive_when_another_process_rewarms_the_room(kit):
    """Redis only, durability: after the wipe, process B appends first (re-creating the
    stream with a new epoch); A notices the new epoch and still writes its own events."""
    kit.redis_only()
    await stop_app_write_behind(kit.services)
    a, _ = await kit.log()
    b, _ = await kit.log()
    sid = new_room()
    lost = await append_n(a, sid, 4)
    await kit.wipe(sid)
    after = await append_n(b, sid, 2, start=4)
    assert all(e.key > lost[-1].key for e in after)
    after += await append_n(a, sid, 1, start=6)  # A's next append sees the new epoch too

    async def all_stored() -> bool:
        await drain(kit.store, a)
        await drain(kit.store, b)
        return set(ids_of(lost + after)) <= set(await kit.stored_ids(sid))

    assert await eventually(all_stored, 6.0), await kit.stored_ids(sid)
    assert_same_events(await kit.stored(sid), lost + after)
    assert await eventually(lambda: _both_zero(a, b), 4.0)


async def _both_zero(a: RoomLog, b: RoomLog) -> bool:
    return await a.backlog() == 0 and await b.backlog() == 0


async def test_entries_a_dead_consumer_read_are_claimed_by_another(kit, monkeypatch):
    """Redis only: A read entries (take_unflushed) and died before mark_flushed; after the
    idle time, B claims them and they reach the store once."""
    kit.redis_only()
    monkeypatch.setattr(redis_log, "CLAIM_IDLE_MS", 300)
    monkeypatch.setattr(redis_log, "CLAIM_INTERVAL", 0.1)
    await stop_app_write_behind(kit.services)
    a, _ = await kit.log()
    b, _ = await kit.log()
    sid = new_room()
    appended = await append_n(a, sid, 5)
    read_by_a: list[Event] = []

    async def a_read_all() -> bool:
        read_by_a.extend(await a.take_unflushed(500))
        return set(ids_of(appended)) <= set(ids_of(read_by_a))

    assert await eventually(a_read_all, 3.0)
    pending = await kit.redis.xpending(kit.key(sid, "log"), GROUP)
    assert pending["pending"] == 5
    await kit.close(a)  # dies without mark_flushed
    claimed: list[Event] = []

    async def b_claimed_all() -> bool:
        claimed.extend(await drain(kit.store, b))
        return set(ids_of(appended)) <= set(ids_of(claimed))

    assert await eventually(b_claimed_all, 5.0), ids_of(claimed)
    assert_same_events(await kit.stored(sid), appended)
    assert (await kit.redis.xpending(kit.key(sid, "log"), GROUP))["pending"] == 0


async def test_own_events_the_stream_lost_past_the_groups_position_are_written_by_the_appender(kit, monkeypatch):
    """Redis only: the room's last events vanish (a partial rollback) and nothing follows them."""
    kit.redis_only()
    import ask2live.cache.redis_log as redis_log

    monkeypatch.setattr(redis_log, "OWN_EVENT_OVERDUE_MS", 0)
    log, _ = await kit.log()
    sid = new_room()
    appended = await append_n(log, sid, 4)
    client = aioredis.from_url(REDIS_URL)
    await client.xdel(log._key(sid, "log"), *[e.id for e in appended[2:]])
    await client.aclose()
    await log._check_watermarks()  # the lost ones become this process's to write
    batch = await log.take_unflushed(100)
    assert {e.id for e in appended[2:]} <= {e.id for e in batch}
