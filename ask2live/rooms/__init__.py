"""The live room: who is in it, what they may do, and every event reaching every socket.

A chat message takes one straight path: socket → validation → room log append → local
fan-out (the event encoded and framed once) → write-behind. No database read or write
on that path. Question state (a live question, votes, answer/pin/hide) goes through the
cue sheet's transactions first — vote-once and one-pin need one authority — and reaches
the room by the cue sheet's change listener, through the log like everything else.

- ``hub``: this process's members and the fan-out;
- ``commands``: the rate limit and one handler per command;
- ``welcome``: the first frame of a connection;
- ``question_events``: the cue sheet's changes as room events;
- ``roles``: who is host, speaker or listener.
"""

from __future__ import annotations

import logging
import time

import orjson

from ..cache.roomlog import RoomLog
from ..cuesheet import CueSheet, QuestionChange
from ..events import parse_event_id
from ..metrics import Metrics
from ..models import Session, User
from ..schedule import Schedule
from ..throttle import Throttle
from ..store import Store
from ..voice import Voice
from . import commands
from ..errors import Unavailable
from ..cache.roomlog import AudiencePage
from ..errors import Forbidden
from .cue_cache import CACHE_MAX, RoomQuestions
from .hub import CloseCode, Hub, LocalRoom, Member, TokenBucket, Transport
from .outbox import Outbox
from .question_events import public_question, question_event
from .roles import HOST, LISTENER, SPEAKER, role_of
from .welcome import build_welcome, visible_history
from ..wsframe import text_frame

__all__ = ["CloseCode", "HOST", "LISTENER", "LocalRoom", "Member", "Rooms", "SPEAKER", "Transport", "role_of"]

log = logging.getLogger(__name__)

# The audience's first page in a welcome: the people who came first (the host pages on).
AUDIENCE_PAGE = 20
# History sent on join: enough to read back a few minutes of a busy chat.
HISTORY_ON_JOIN = 100
# ... read from this many of the room's last events: `audience` events (one a second while
# people come and go) are left out of a welcome, and must not crowd the chat out of it.
HISTORY_READ = 300
# The cue sheet part of the welcome: the top questions, as the host's list shows them.
WELCOME_QUESTIONS = 50


class Rooms:
    """Every live room of this process, wired to the schedule and the cue sheet."""

    def __init__(self, room_log: RoomLog, store: Store, schedule: Schedule, cuesheet: CueSheet,
                 voice: Voice, metrics: Metrics, throttle: Throttle, rate: tuple[float, float] = (5.0, 10.0),
                 user_rate: tuple[float, float] = (10.0, 20.0), sockets_per_user: int = 10,
                 process_name: str = "ask2live") -> None:
        self.room_log = room_log
        self.store = store
        self.schedule = schedule
        self.cuesheet = cuesheet
        self.voice = voice
        self.metrics = metrics
        self.hub = Hub(room_log, voice, metrics)
        self.outbox = Outbox(self.hub, store, process_name)
        self._rate = rate
        self.throttle = throttle
        self._token_revoked_listeners: list = []
        self.user_rate = user_rate
        self._sockets_per_user = sockets_per_user
        schedule.on_transition(self.on_session_transition)
        cuesheet.on_change(self.on_question_change)

    async def start(self) -> None:
        await self.hub.start(self._on_notice)
        self.outbox.start()

    async def close(self) -> None:
        await self.outbox.close()
        await self.hub.close()

    def local_counts(self) -> tuple[int, int]:
        """(rooms, connections) on this process."""
        return self.hub.local_counts()

    # ------------------------------------------------------------------ told by the domain

    async def on_session_transition(self, session: Session, status: str) -> None:
        if status == "live":
            await self.outbox.announce(session.id, "session_started", session=session.to_json())
        elif status == "ended":
            await self.outbox.announce(session.id, "session_ended", session=session.to_json())

    async def on_question_change(self, change: QuestionChange) -> None:
        """A question changed: a room command's change always reaches the room (it is its
        answer); a REST change only while the session is live (before, there is no room)."""
        session = await self.schedule.get(change.question.session_id)
        if change.echo is None and session.status != "live":
            return
        try:
            speakers = await self.room_log.members(session.id, "speakers")
        except Unavailable:
            speakers = set()  # the event still goes out (later); the role is the best known
        role = role_of(change.actor.id, session.host.id, speakers)
        event_type, fields = question_event(change, session, role)
        await self.outbox.announce(session.id, event_type, **fields)

    def when_token_revoked(self, listener) -> None:
        """Call ``listener(token_digest)`` when any process tells of a logout."""
        self._token_revoked_listeners.append(listener)

    async def on_token_revoked(self, token_digest: str) -> None:
        """A token was logged out: its sockets close, on whichever process they are."""
        try:
            await self.room_log.notify(orjson.dumps({"kind": "token_revoked", "token": token_digest}))
        except Unavailable:
            # The log-out stands; sockets on other processes stay open until they reconnect
            # (and are refused then). This process's own close at once.
            log.warning("token revocation not told to the other processes: the room log is unavailable")
            self._close_token(token_digest)

    def _on_notice(self, message: bytes) -> None:
        notice = orjson.loads(message)
        if notice.get("kind") == "token_revoked":
            for listener in self._token_revoked_listeners:
                listener(notice["token"])
            self._close_token(notice["token"])
        elif notice.get("kind") == "close_member":
            for member in self.hub.members():
                if member.session_id == notice["session"] and member.presence_key == notice["member"]:
                    member.transport.close_with(*CloseCode.TOO_MANY_SOCKETS)

    def _close_token(self, token_digest: str) -> None:
        for member in self.hub.members():
            if member.token_digest == token_digest:
                member.transport.close_with(*CloseCode.LOGGED_OUT)

    # ------------------------------------------------------------------ join / leave / frames

    async def join(self, member: Member, session: Session, since: str | None) -> None:
        """Admit a socket: its cost to the room is O(1) frames for the others (a listener
        is told in the next `audience` event, not by an event of its own), and the welcome
        it gets does not grow with the room (the stage, a count and a first page of names,
        the cached top questions, the recent history)."""
        started = time.perf_counter()
        member.pending = []  # events from now on wait here until the welcome is out
        member.bucket = TokenBucket(*self._rate)
        room = await self.hub.open(session.id, session.host.id, session.status)
        # In the room at once: a room is never empty while a join is under way in it.
        room.members[member.conn_id] = member
        try:
            await self._join(member, room, session, since, started)
        except BaseException:
            self.hub.remove(member)  # and the room, if nobody else is in it
            raise

    async def _join(self, member: Member, room: LocalRoom, session: Session, since: str | None,
                    started: float) -> None:
        sid, log_ = session.id, self.room_log
        speakers, hands = await log_.stage(sid)
        member.role = role_of(member.user.id, session.host.id, speakers)
        on_stage = member.role != LISTENER or member.user.id in hands
        info = {"user": member.user.to_json(), "role": member.role, "conn": member.conn_id}
        change = b"" if on_stage else orjson.dumps({"joined": {"user": info["user"], "conn": member.conn_id}})
        connections = await log_.presence_add(sid, member.presence_key, orjson.dumps(info), change)
        if member.left:
            # The socket closed while it was being let in, before its leave could find it here.
            await log_.presence_remove(sid, member.presence_key)
            self.hub.remove(member)
            return
        cap = self._sockets_per_user
        if cap and len(connections) > cap:
            # Wherever the oldest sockets are: every process closes its own.
            for key in connections[:len(connections) - cap]:
                await log_.notify(orjson.dumps({"kind": "close_member", "session": sid, "member": key}))
        if on_stage:
            await self.hub.append(sid, "join", **info)
        # The count changed either way: the next audience event restates it.
        self.hub.audience_changed(sid)

        recovered = False
        if since is not None:
            catchup = await log_.read(sid, since)
            recovered = catchup.complete
        if since is None or not recovered:
            catchup = await log_.read(sid, None, HISTORY_READ)
        history = catchup.events
        self.metrics.history.labels(catchup.source).inc()
        if history:
            position = history[-1].id
        elif recovered:
            position = since
        else:
            position = await log_.last_id(sid)

        if room.questions is None:
            # The first member of the room on this process: one cue-sheet query, then events
            # (those that arrive during the query are applied on top of its answer).
            async with room.questions_lock:
                if room.questions is None:
                    room.questions_buffer = []
                    try:
                        loaded = await self.cuesheet.list(sid, None, "top", CACHE_MAX, 0)
                        questions = RoomQuestions([public_question(q) for q in loaded], session.pinned_question_id)
                        for event in room.questions_buffer:
                            questions.apply(event)
                        room.questions = questions
                    finally:
                        room.questions_buffer = None
        shown = visible_history(history)
        if not recovered:  # the recent history: its last HISTORY_ON_JOIN events that show
            shown = shown[-HISTORY_ON_JOIN:]
        stage = await log_.presence_of(sid, {session.host.id} | speakers | hands)
        welcome = build_welcome(
            session=session, user=member.user, conn_id=member.conn_id, stage=stage.values(), speakers=speakers,
            hands=hands, audience=await log_.audience_page(sid, None, AUDIENCE_PAGE),
            questions=room.questions.top(WELCOME_QUESTIONS), history=shown, position=position,
            resumed=since is not None, recovered=recovered, voice_configured=self.voice.configured)
        member.transport.send_frame(text_frame(welcome))
        self.metrics.welcome_bytes.observe(len(welcome))
        position_key = parse_event_id(position) if position else (0, -1)
        waiting, member.pending = member.pending, None
        for event, frame in waiting:
            if event is None or event.key > position_key:
                member.transport.send_frame(frame)
        self.metrics.join_seconds.observe(time.perf_counter() - started)

    async def leave(self, member: Member) -> None:
        member.left = True
        if not self.hub.remove(member):
            return
        sid = member.session_id
        try:
            on_stage = member.role != LISTENER or member.user.id in await self.room_log.members(sid, "hands")
            change = b"" if on_stage else orjson.dumps({"left": {"user": member.user.to_json(), "conn": member.conn_id}})
            if await self.room_log.presence_remove(sid, member.presence_key, change):
                if on_stage:
                    await self.hub.append(sid, "leave", user=member.user.to_json(), conn=member.conn_id)
                self.hub.audience_changed(sid)
        except Exception as exc:  # the room log is down; presence expiry will tell the others
            log.warning("leave of %s not recorded: %s", member.presence_key, exc)

    async def audience(self, session: Session, viewer: User, after: int | None, limit: int) -> AudiencePage:
        """A page of who is in the room, in the order they came: for the host only."""
        if viewer.id != session.host.id:
            raise Forbidden("not_host", "Only the host may list who is in the room.")
        page = await self.room_log.audience_page(session.id, after, limit)
        speakers = await self.room_log.members(session.id, "speakers")
        entries = []
        for raw in page.entries:  # roles as of now, not as of joining
            entry = orjson.loads(raw)
            entry["role"] = role_of(entry["user"]["id"], session.host.id, speakers)
            entries.append(orjson.dumps(entry))
        return page._replace(entries=entries)

    async def handle(self, member: Member, message: str | bytes) -> None:
        await commands.handle(self, member, message)

    async def voice_tokens(self, session: Session, user: User) -> dict:
        """For the REST endpoint: publisher for the host and granted speakers."""
        speakers = await self.room_log.members(session.id, "speakers")
        return self.voice.tokens(session.id, user, publisher=role_of(user.id, session.host.id, speakers) != LISTENER)
