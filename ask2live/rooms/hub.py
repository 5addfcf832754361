"""The local side of the live room: this process's members of each room, and every event
of a room reaching each of them, in log order, framed once (Centrifuge's hub)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson

from ..cache.roomlog import Notice, RoomLog
from ..events import Event
from ..metrics import Metrics
from ..models import User
from ..tasks import cancel_and_wait
from ..voice import Voice
from ..wsframe import text_frame
from .audience import AUDIENCE_INTERVAL_SECONDS, audience_fields
from .cue_cache import RoomQuestions
from .roles import HOST, LISTENER, SPEAKER

log = logging.getLogger(__name__)

# Presence: refresh our members in the shared log (and sweep those of dead processes).
PRESENCE_REFRESH_SECONDS = 10.0


class CloseCode:
    """WebSocket close codes (4000–4999 are the application's)."""

    GOING_AWAY = (1001, "server shutting down")
    LOGGED_OUT = (4001, "logged_out: the token this socket opened with was revoked")
    SLOW = (4008, "slow: outgoing buffer full, resume with ?since=")
    TOO_MANY_SOCKETS = (4013, "too_many_sockets: this user opened more sockets in this room; the oldest is closed")
    RATE_LIMITED = (4029, "rate_limited: too many frames")


class Transport(Protocol):
    """What the room needs from a socket: one pre-built frame at a time, and a close."""

    def send_frame(self, frame: bytes) -> None: ...

    def close_with(self, code: int, reason: str) -> None: ...


class TokenBucket:
    # One per socket: thousands in a big room, so no per-instance __dict__.
    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(slots=True)  # one per socket: thousands in a big room, so no per-instance __dict__
class Member:
    transport: Transport
    user: User
    session_id: int
    # The digest of the token the socket was opened with (logging it out closes the socket).
    token_digest: str | None = None
    conn_id: str = field(default_factory=lambda: secrets.token_hex(6))
    role: str = LISTENER
    bucket: TokenBucket | None = None
    refusals: int = 0
    # Events that arrive while the welcome is being put together wait here.
    pending: list | None = None
    # The socket closed (leave() ran), possibly before its join was done.
    left: bool = False

    @property
    def presence_key(self) -> str:
        return f"{self.user.id}:{self.conn_id}"

    def send(self, payload: bytes) -> None:
        self.send_frame(text_frame(payload))

    def send_frame(self, frame: bytes) -> None:
        """A frame for this member alone: queued behind the welcome while it is being built."""
        if self.pending is not None:
            self.pending.append((None, frame))
        else:
            self.transport.send_frame(frame)


@dataclass
class LocalRoom:
    session_id: int
    host_id: int
    status: str
    members: dict[str, Member] = field(default_factory=dict)
    # The room's public cue sheet (loaded with the first member on this process); the room's
    # question events that arrive while it loads wait in the buffer, then apply on top.
    questions: RoomQuestions | None = None
    questions_buffer: list | None = None
    questions_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class Hub:
    """This process's rooms. The room log delivers every event of a watched room here."""

    def __init__(self, room_log: RoomLog, voice: Voice, metrics: Metrics) -> None:
        self.room_log = room_log
        self._voice = voice
        self._metrics = metrics
        self._local: dict[int, LocalRoom] = {}
        self._task: asyncio.Task | None = None
        self._audience_task: asyncio.Task | None = None
        # Rooms whose audience changed here (someone joined or left, or expired) since their
        # last `audience` event: whether or not a member is still here to see it.
        self._audience_due: set[int] = set()
        # An audience event taken from the log whose append failed: appended next round.
        self._audience_unsent: dict[int, dict] = {}

    async def start(self, notice: Notice | None = None) -> None:
        await self.room_log.start(self.deliver, notice)
        self._task = asyncio.create_task(self._presence_loop(), name="presence")
        self._audience_task = asyncio.create_task(self._audience_loop(), name="audience")

    async def close(self) -> None:
        for task in (self._task, self._audience_task):
            if task is not None:
                await cancel_and_wait(task)
        for room in list(self._local.values()):
            for member in list(room.members.values()):
                member.transport.close_with(*CloseCode.GOING_AWAY)
        await self.room_log.close()

    def local_counts(self) -> tuple[int, int]:
        """(rooms, connections) on this process."""
        return len(self._local), sum(len(r.members) for r in self._local.values())

    def room(self, session_id: int) -> LocalRoom:
        return self._local[session_id]

    def members(self) -> list[Member]:
        """Every member of every room on this process."""
        return [m for room in self._local.values() for m in room.members.values()]

    async def append(self, session_id: int, event_type: str, **fields: Any) -> Event:
        body = orjson.dumps({"type": event_type, "ts": int(time.time() * 1000), **fields})
        return await self.append_body(session_id, event_type, body)

    async def append_body(self, session_id: int, event_type: str, body: bytes) -> Event:
        event = await self.room_log.append(session_id, event_type, body)
        self._metrics.events.labels(event_type).inc()
        return event

    # ------------------------------------------------------------------ fan-out

    def deliver(self, session_id: int, events: list[Event]) -> None:
        """Every event of a room, in log order, to every local socket: each framed once, and
        the frames of one delivery written to a socket in one send."""
        room = self._local.get(session_id)
        if room is None:
            return
        frames = [text_frame(event.to_json_bytes()) for event in events]
        batch = frames[0] if len(frames) == 1 else b"".join(frames)
        members = list(room.members.values())
        for member in members:
            if member.pending is not None:
                member.pending.extend(zip(events, frames))
            else:
                member.transport.send_frame(batch)
        self._metrics.fanout.observe(len(members))
        self._metrics.frames.inc(len(members) * len(frames))
        self._metrics.coalesced.observe(len(frames))
        for event in events:
            if event.type == "chat" and event.origin and event.origin != self.room_log.origin:
                # Appended by another process: its wall-clock ts to here.
                sent_ms = orjson.loads(event.body)["ts"]
                self._metrics.message_latency.labels("remote").observe(max(0.0, time.time() - sent_ms / 1000))
            # After the broadcast: whatever goes wrong here costs one member's token, not the event.
            self._apply(room, event)

    def _apply(self, room: LocalRoom, event: Event) -> None:
        """Keep this process's view of the room in step with the events (all processes do)."""
        if event.type in ("question", "question_updated"):
            if room.questions is not None:
                room.questions.apply(event)
            elif room.questions_buffer is not None:
                room.questions_buffer.append(event)
        elif event.type == "audience":
            self._metrics.audience.labels(str(room.session_id)).set(orjson.loads(event.body)["count"])
        elif event.type in ("session_started", "session_ended"):
            room.status = "live" if event.type == "session_started" else "ended"
        elif event.type in ("voice_granted", "voice_revoked"):
            target = orjson.loads(event.body)["user"]["id"]
            granted = event.type == "voice_granted"
            for member in room.members.values():
                if member.user.id == target and member.role != HOST:
                    member.role = SPEAKER if granted else LISTENER
                    if self._voice.configured:
                        self._send_voice_token(room, member, granted)

    def _send_voice_token(self, room: LocalRoom, member: Member, publisher: bool) -> None:
        """Only the grantee gets a token, and only over its own socket."""
        try:
            token = self._voice.tokens(room.session_id, member.user, publisher=publisher)
        except Exception:
            log.exception("voice token for user %s in room %s", member.user.id, room.session_id)
            return
        member.send_frame(text_frame(orjson.dumps({"type": "voice_token", **token})))

    # ------------------------------------------------------------------ members

    async def open(self, session_id: int, host_id: int, status: str) -> LocalRoom:
        """This process's room for the session, watching the log from its current end."""
        room = self._local.get(session_id)
        if room is None:
            last = await self.room_log.last_id(session_id)
            room = self._local.get(session_id)
            if room is None:
                room = LocalRoom(session_id, host_id, status)
                self._local[session_id] = room
                self.room_log.watch(session_id, last)
        return room

    def remove(self, member: Member) -> bool:
        """Take a member out of its local room; False if it was not in it."""
        room = self._local.get(member.session_id)
        if room is None:
            return False
        removed = room.members.pop(member.conn_id, None) is not None
        if not room.members:  # also a room whose first join failed before it had its member
            del self._local[member.session_id]
            self.room_log.unwatch(member.session_id)
            try:
                self._metrics.audience.remove(str(member.session_id))
            except KeyError:
                pass
        return removed

    def audience_changed(self, session_id: int) -> None:
        self._audience_due.add(session_id)

    async def _audience_loop(self) -> None:
        """One `audience` event per room and interval, for the rooms whose audience changed
        here (the log decides which process tells it: one a room per interval)."""
        interval_ms = int(AUDIENCE_INTERVAL_SECONDS * 1000)
        while True:
            await asyncio.sleep(AUDIENCE_INTERVAL_SECONDS)
            for sid in list(self._audience_due):
                try:
                    fields = self._audience_unsent.get(sid)
                    if fields is None:
                        news = await self.room_log.audience_news(sid, interval_ms)
                        if news is None:
                            continue  # told by another process moments ago: next round
                        if not news.new:
                            self._audience_due.discard(sid)
                            continue
                        # Taken from the log: kept here until the append succeeds.
                        fields = self._audience_unsent[sid] = audience_fields(news.count, news.changes)
                    await self.append(sid, "audience", **fields)
                    del self._audience_unsent[sid]
                    self._audience_due.discard(sid)
                except Exception as exc:
                    log.warning("audience of room %s: %s", sid, exc)

    async def _presence_loop(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_REFRESH_SECONDS)
            for sid, room in list(self._local.items()):
                try:
                    await self.room_log.presence_refresh(sid, [m.presence_key for m in room.members.values()])
                    expired = await self.room_log.presence_expired(sid)
                    if not expired:
                        continue
                    # Those on the stage (host, speakers, hands up) are named as they go; the
                    # others are in the next audience event's count.
                    speakers, hands = await self.room_log.stage(sid)
                    stage = {room.host_id} | speakers | hands
                    for key in expired:
                        user_id, conn = key.split(":", 1)
                        if int(user_id) in stage:
                            await self.append(sid, "leave", user={"id": int(user_id)}, conn=conn, reason="expired")
                    self._audience_due.add(sid)
                except Exception as exc:
                    log.warning("presence refresh of room %s: %s", sid, exc)
