"""The live room: who is in it, what they may do, and every event reaching every socket.

A chat message takes one straight path: socket → validation → room log append → local
fan-out (the event encoded and framed once) → write-behind. No database read or write
on that path. Question state (a live question, votes, answer/pin/hide) goes through the
cue sheet's transactions first — vote-once and one-pin need one authority — and then
through the log like everything else.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from redis.exceptions import RedisError

from . import protocol
from .cache.roomlog import Event, RoomLog, parse_event_id
from .cuesheet import CueSheet
from .errors import ApiError, Conflict, Forbidden, NotFound
from .metrics import Metrics
from .models import Question, Session, User
from .protocol import Command
from .schedule import Schedule
from .store import Store
from .tasks import cancel_and_wait
from .voice import Voice
from .wsframe import text_frame

log = logging.getLogger(__name__)

HOST, SPEAKER, LISTENER = "host", "speaker", "listener"

# History sent on join: enough to read back a few minutes of a busy chat.
HISTORY_ON_JOIN = 100
# The cue sheet part of the welcome: the top questions, as the host's list shows them.
WELCOME_QUESTIONS = 50

# Per connection, by default (config.rate_per_second / rate_burst): 5 frames a second on
# average, bursts of 10 (a fast typist, a few votes at once). Past it, frames are refused
# with rate_limited; a client that keeps going for 30 refusals in a row is not a person,
# and is closed.
ABUSE_REFUSALS = 30

# Presence: refresh our members in the shared log (and sweep those of dead processes).
PRESENCE_REFRESH_SECONDS = 10.0


class CloseCode:
    """WebSocket close codes (4000–4999 are the application's)."""

    GOING_AWAY = (1001, "server shutting down")
    SLOW = (4008, "slow: outgoing buffer full, resume with ?since=")
    RATE_LIMITED = (4029, "rate_limited: too many frames")


class Transport(Protocol):
    """What the room needs from a socket."""

    def send_frame(self, frame: bytes) -> None: ...

    def send_message_plain(self, text: str) -> None: ...

    def close_with(self, code: int, reason: str) -> None: ...


class TokenBucket:
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


@dataclass
class Member:
    transport: Transport
    user: User
    session_id: int
    conn_id: str = field(default_factory=lambda: secrets.token_hex(6))
    role: str = LISTENER
    bucket: TokenBucket | None = None
    refusals: int = 0
    # Events that arrive while the welcome is being put together wait here.
    pending: list | None = None

    @property
    def presence_key(self) -> str:
        return f"{self.user.id}:{self.conn_id}"

    def send(self, payload: bytes) -> None:
        self.transport.send_frame(text_frame(payload))


@dataclass
class LocalRoom:
    session_id: int
    host_id: int
    status: str
    members: dict[str, Member] = field(default_factory=dict)


def user_json(user: User) -> dict:
    return user.to_json()


def public_question(question: Question) -> dict:
    """A question as the whole room may see it (no per-viewer fields)."""
    if question.hidden:
        return {"id": question.id, "hidden": True}
    body = question.to_json(None)
    del body["mine"], body["voted"]
    return body


class Rooms:
    def __init__(self, room_log: RoomLog, store: Store, schedule: Schedule, cuesheet: CueSheet,
                 voice: Voice, metrics: Metrics, rate: tuple[float, float] = (5.0, 10.0),
                 plain_broadcast: bool = False) -> None:
        self.log = room_log
        self._store = store
        self._schedule = schedule
        self._cuesheet = cuesheet
        self._voice = voice
        self._local: dict[int, LocalRoom] = {}
        self._task: asyncio.Task | None = None
        self._metrics = metrics
        self._plain = plain_broadcast
        self._rate = rate
        schedule.on_transition(self._on_session_transition)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        await self.log.start(self._deliver)
        self._task = asyncio.create_task(self._presence_loop(), name="presence")

    async def close(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        for room in list(self._local.values()):
            for member in list(room.members.values()):
                member.transport.close_with(*CloseCode.GOING_AWAY)
        await self.log.close()

    def local_counts(self) -> tuple[int, int]:
        """(rooms, connections) on this process."""
        return len(self._local), sum(len(r.members) for r in self._local.values())

    # ------------------------------------------------------------------ events

    async def append(self, session_id: int, event_type: str, **fields: Any) -> Event:
        body = orjson.dumps({"type": event_type, "ts": int(time.time() * 1000), **fields})
        event = await self.log.append(session_id, event_type, body)
        self._metrics.events.labels(event_type).inc()
        return event

    def _deliver(self, session_id: int, events: list[Event]) -> None:
        """Every event of a room, in log order, to every local socket: framed once."""
        room = self._local.get(session_id)
        if room is None:
            return
        for event in events:
            payload = event.to_json_bytes()
            frame = text_frame(payload)
            text = payload.decode() if self._plain else ""
            members = list(room.members.values())
            for member in members:
                if member.pending is not None:
                    member.pending.append((event, frame))
                elif self._plain:
                    member.transport.send_message_plain(text)
                else:
                    member.transport.send_frame(frame)
            self._metrics.fanout.observe(len(members))
            self._metrics.frames.inc(len(members))
            if event.type == "chat" and event.origin and event.origin != self.log.origin:
                # Appended by another process: its wall-clock ts to here.
                sent_ms = orjson.loads(event.body)["ts"]
                self._metrics.message_latency.labels("remote").observe(max(0.0, time.time() - sent_ms / 1000))
            # After the broadcast: whatever goes wrong here costs one member's token, not the event.
            self._apply(room, event)

    def _apply(self, room: LocalRoom, event: Event) -> None:
        """Keep this process's view of the room in step with the events (all processes do)."""
        if event.type in ("session_started", "session_ended"):
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
        frame = text_frame(orjson.dumps({"type": "voice_token", **token}))
        if member.pending is not None:
            member.pending.append((None, frame))
        else:
            member.transport.send_frame(frame)

    async def _on_session_transition(self, session: Session, status: str) -> None:
        if status == "live":
            await self.append(session.id, "session_started", session=session.to_json())
        elif status == "ended":
            await self.append(session.id, "session_ended", session=session.to_json())

    # ------------------------------------------------------------------ join / leave

    async def _open_room(self, session: Session) -> LocalRoom:
        room = self._local.get(session.id)
        if room is None:
            last = await self.log.last_id(session.id)
            room = self._local.get(session.id)
            if room is None:
                room = LocalRoom(session.id, session.host.id, session.status)
                self._local[session.id] = room
                self.log.watch(session.id, last)
        return room

    async def join(self, member: Member, session: Session, since: str | None) -> None:
        sid = session.id
        room = await self._open_room(session)
        speakers = await self.log.members(sid, "speakers")
        member.role = HOST if session.host.id == member.user.id else SPEAKER if member.user.id in speakers else LISTENER
        member.pending = []
        member.bucket = TokenBucket(*self._rate)
        room.members[member.conn_id] = member
        info = {"user": user_json(member.user), "role": member.role, "conn": member.conn_id}
        await self.log.presence_add(sid, member.presence_key, orjson.dumps(info))
        await self.append(sid, "join", **info)

        recovered = False
        if since is not None:
            catchup = await self.log.read(sid, since)
            recovered = catchup.complete
        if since is None or not recovered:
            catchup = await self.log.read(sid, None, HISTORY_ON_JOIN)
        history = catchup.events
        self._metrics.history.labels(catchup.source).inc()
        if history:
            position = history[-1].id
        elif recovered:
            position = since
        else:
            position = await self.log.last_id(sid)
        deleted = {orjson.loads(e.body).get("message_id") for e in history if e.type == "message_deleted"}
        history = [e for e in history if not (e.type == "chat" and e.id in deleted)]

        presence = await self.log.presence(sid)
        hands = await self.log.members(sid, "hands")
        questions = await self._cuesheet.list(sid, member.user, "top", WELCOME_QUESTIONS, 0)
        people = []
        for raw in presence.values():
            entry = orjson.loads(raw)
            uid = entry["user"]["id"]
            entry["role"] = HOST if uid == session.host.id else SPEAKER if uid in speakers else LISTENER
            people.append(entry)
        welcome = {
            "type": "welcome",
            "session": session.to_json(),
            "you": {"user": user_json(member.user), "role": member.role, "conn": member.conn_id},
            "presence": people,
            "speakers": sorted(speakers),
            "hands": sorted(hands),
            "questions": [q.to_json(member.user.id) for q in questions],
            "history": [orjson.Fragment(e.to_json_bytes()) for e in history],
            "position": position,
            "resumed": since is not None,
            "recovered": recovered,
            "voice": {"configured": self._voice.configured},
        }
        member.send(orjson.dumps(welcome))
        position_key = parse_event_id(position) if position else (0, -1)
        waiting, member.pending = member.pending, None
        for event, frame in waiting:
            if event is None or event.key > position_key:
                member.transport.send_frame(frame)

    async def leave(self, member: Member) -> None:
        room = self._local.get(member.session_id)
        if room is None or room.members.pop(member.conn_id, None) is None:
            return
        if not room.members:
            del self._local[member.session_id]
            self.log.unwatch(member.session_id)
        try:
            if await self.log.presence_remove(member.session_id, member.presence_key):
                await self.append(member.session_id, "leave", user=user_json(member.user), conn=member.conn_id)
        except Exception as exc:  # the room log is down; presence expiry will tell the others
            log.warning("leave of %s not recorded: %s", member.presence_key, exc)

    async def _presence_loop(self) -> None:
        while True:
            await asyncio.sleep(PRESENCE_REFRESH_SECONDS)
            for sid, room in list(self._local.items()):
                try:
                    await self.log.presence_refresh(sid, [m.presence_key for m in room.members.values()])
                    for key in await self.log.presence_expired(sid):
                        user_id, conn = key.split(":", 1)
                        await self.append(sid, "leave", user={"id": int(user_id)}, conn=conn, reason="expired")
                except Exception as exc:
                    log.warning("presence refresh of room %s: %s", sid, exc)

    # ------------------------------------------------------------------ commands

    async def handle(self, member: Member, message: str | bytes) -> None:
        received = time.perf_counter()
        client_msg_id = None
        try:
            # The limit comes first: every frame counts, garbage included.
            if not member.bucket.take():
                client_msg_id = protocol.client_msg_id_of(protocol.decode_or_none(message))
                self._metrics.rate_limited.inc()
                member.refusals += 1
                if member.refusals >= ABUSE_REFUSALS:
                    member.transport.close_with(*CloseCode.RATE_LIMITED)
                raise ApiError("rate_limited", "Too many frames; slow down.", status=429)
            member.refusals = 0
            frame = protocol.decode(message)
            client_msg_id = protocol.client_msg_id_of(frame)
            command = protocol.parse(frame)
            if command.type in protocol.HOST_COMMANDS and member.role != HOST:
                raise Forbidden("not_host", f"Only the host may {command.type.replace('_', ' ')}.")
            await getattr(self, f"_on_{command.type}")(member, command)
            if command.type == "chat":
                # Receipt to written to every local socket (delivery happens inside the append).
                self._metrics.message_latency.labels("local").observe(time.perf_counter() - received)
        except ApiError as error:
            member.send(protocol.error_frame(error, client_msg_id))
        except (RedisError, OSError) as exc:
            # The room log is unreachable: nothing was acknowledged; the client may retry.
            log.warning("room %s: %s", member.session_id, exc)
            error = ApiError("room_unavailable", "The room is briefly unavailable; send again.", status=503)
            member.send(protocol.error_frame(error, client_msg_id))
        except Exception:
            log.exception("room %s: frame from user %s", member.session_id, member.user.id)
            error = ApiError("internal_error", "Something went wrong on our side.", status=500)
            member.send(protocol.error_frame(error, client_msg_id))

    def _room(self, member: Member) -> LocalRoom:
        return self._local[member.session_id]

    def _speaker_fields(self, member: Member, command: Command) -> dict:
        return {"user": user_json(member.user), "role": member.role, "client_msg_id": command.client_msg_id}

    async def _on_chat(self, member: Member, command: Command) -> None:
        if self._room(member).status != "live":
            raise Conflict("not_live", "The session is not live: chat opens when the host starts it.")
        await self.append(member.session_id, "chat", text=command.text, **self._speaker_fields(member, command))

    async def _on_question(self, member: Member, command: Command) -> None:
        question = await self._cuesheet.ask(member.session_id, member.user, command.text, command.anonymous)
        fields = self._speaker_fields(member, command)
        if command.anonymous:
            fields["user"], fields["role"] = None, None
        await self.append(member.session_id, "question", question=public_question(question), **fields)

    async def _question_here(self, member: Member, question_id: int) -> None:
        question, _ = await self._cuesheet.question(question_id, member.user)
        if question.session_id != member.session_id:
            raise NotFound("question_not_found", f"There is no question {question_id} in this session.")

    async def _question_update(self, member: Member, command: Command, action: str, question: Question) -> None:
        await self.question_changed(action, question, member.user, member.role, command.client_msg_id,
                                    value=None if action in ("vote", "unvote") else command.value)

    async def announce_from_api(self, action: str, question: Question, user: User, value: bool | None = None) -> None:
        """A question changed through the REST API: a live room hears of it as from a socket."""
        session = await self._schedule.get(question.session_id)
        if session.status != "live":
            return
        role = HOST if user.id == session.host.id else LISTENER
        if action == "ask":
            fields = {"user": None, "role": None} if question.anonymous else {"user": user_json(user), "role": role}
            await self.append(session.id, "question", question=public_question(question), client_msg_id=None,
                              **fields)
        else:
            await self.question_changed(action, question, user, role, value=value)

    async def question_changed(self, action: str, question: Question, user: User, role: str | None,
                               client_msg_id: str | None = None, value: bool | None = None) -> None:
        """Tell the room a question changed (from a socket here, or from the REST API)."""
        session = await self._schedule.get(question.session_id)
        body = {"id": question.id, "deleted": True} if action == "delete" else public_question(question)
        fields: dict[str, Any] = {"action": action, "question": body,
                                  "pinned_question_id": session.pinned_question_id}
        if value is not None:
            fields["value"] = value
        await self.append(question.session_id, "question_updated", **fields, user=user_json(user), role=role,
                          client_msg_id=client_msg_id)

    async def _on_question_command(self, member: Member, command: Command) -> None:
        """vote, unvote, answer, pin, hide: the cue sheet's rules and transaction, then the event."""
        await self._question_here(member, command.question_id)
        qid, user, value = command.question_id, member.user, command.value
        cuesheet = self._cuesheet
        action = {
            "vote": lambda: cuesheet.vote(qid, user),
            "unvote": lambda: cuesheet.unvote(qid, user),
            "answer": lambda: cuesheet.answer(qid, user, value),
            "pin": lambda: cuesheet.pin(qid, user, value),
            "hide": lambda: cuesheet.hide(qid, user, value),
        }[command.type]
        await self._question_update(member, command, command.type, await action())

    _on_vote = _on_unvote = _on_answer = _on_pin = _on_hide = _on_question_command

    async def _on_delete_message(self, member: Member, command: Command) -> None:
        await self.append(member.session_id, "message_deleted", message_id=command.message_id,
                          **self._speaker_fields(member, command))

    async def _on_raise_hand(self, member: Member, command: Command) -> None:
        if member.role == HOST:
            raise Conflict("is_host", "The host does not need to raise a hand.")
        if member.role == SPEAKER:
            raise Conflict("already_speaker", "You may speak already.")
        if not await self.log.set_member(member.session_id, "hands", member.user.id, True):
            raise Conflict("hand_already_raised", "Your hand is already raised.")
        await self.append(member.session_id, "hand_raised", **self._speaker_fields(member, command))

    async def _on_lower_hand(self, member: Member, command: Command) -> None:
        if not await self.log.set_member(member.session_id, "hands", member.user.id, False):
            raise Conflict("hand_not_raised", "Your hand is not raised.")
        await self.append(member.session_id, "hand_lowered", **self._speaker_fields(member, command))

    async def _target(self, member: Member, user_id: int) -> User:
        target = await self._store.get_user(user_id)
        if target is None:
            raise NotFound("user_not_found", f"There is no user {user_id}.")
        if target.id == self._room(member).host_id:
            raise Conflict("is_host", "The host always has voice.")
        return target

    async def _on_grant_voice(self, member: Member, command: Command) -> None:
        target = await self._target(member, command.user_id)
        if not await self.log.set_member(member.session_id, "speakers", target.id, True):
            raise Conflict("already_speaker", f"{target.display_name} may speak already.")
        if await self.log.set_member(member.session_id, "hands", target.id, False):
            await self.append(member.session_id, "hand_lowered", user=user_json(target), role=LISTENER,
                              client_msg_id=None)
        await self.append(member.session_id, "voice_granted", user=user_json(target), role=SPEAKER,
                          by=user_json(member.user), client_msg_id=command.client_msg_id)

    async def _on_revoke_voice(self, member: Member, command: Command) -> None:
        target = await self._target(member, command.user_id)
        if not await self.log.set_member(member.session_id, "speakers", target.id, False):
            raise Conflict("not_speaker", f"{target.display_name} has no voice to revoke.")
        await self.append(member.session_id, "voice_revoked", user=user_json(target), role=LISTENER,
                          by=user_json(member.user), client_msg_id=command.client_msg_id)

    async def _on_end(self, member: Member, command: Command) -> None:
        await self._schedule.end(member.session_id, member.user)

    async def _on_voice_token(self, member: Member, command: Command) -> None:
        if self._room(member).status != "live":
            raise Conflict("not_live", "Voice opens when the session goes live.")
        token = self._voice.tokens(member.session_id, member.user, publisher=member.role in (HOST, SPEAKER))
        member.send(orjson.dumps({"type": "voice_token", "client_msg_id": command.client_msg_id, **token}))

    async def voice_tokens(self, session: Session, user: User) -> dict:
        """For the REST endpoint: publisher for the host and granted speakers."""
        speakers = await self.log.members(session.id, "speakers")
        return self._voice.tokens(session.id, user, publisher=user.id == session.host.id or user.id in speakers)
