"""What members may do in the room: the rate limit, then one handler per command type.

``COMMANDS`` is the whole table: a command type the protocol names and this table does not
(or the other way round) fails tests/test_room_commands.py."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Awaitable, Callable

import orjson

from .. import protocol
from ..cuesheet import Echo
from ..errors import ApiError, Conflict, Forbidden, NotFound, Unavailable
from ..models import User
from ..protocol import Command
from .hub import CloseCode, Member
from .roles import HOST, LISTENER, SPEAKER

if TYPE_CHECKING:
    from . import Rooms

log = logging.getLogger(__name__)

# Per connection, by default (config.rate_per_second / rate_burst): 5 frames a second on
# average, bursts of 10 (a fast typist, a few votes at once). Past it, frames are refused
# with rate_limited; a client that keeps going for 30 refusals in a row is not a person,
# and is closed.
ABUSE_REFUSALS = 30


async def handle(rooms: "Rooms", member: Member, message: str | bytes) -> None:
    """One client frame: limit, decode, validate, authorise, run; any refusal is an error
    frame to the sender (with its client_msg_id when the frame had one)."""
    received = time.perf_counter()
    client_msg_id = None
    try:
        # The limit comes first: every frame counts, garbage included.
        if not member.bucket.take():
            client_msg_id = protocol.client_msg_id_of(protocol.decode_or_none(message))
            rooms.metrics.rate_limited.inc()
            member.refusals += 1
            if member.refusals >= ABUSE_REFUSALS:
                member.transport.close_with(*CloseCode.RATE_LIMITED)
            raise ApiError("rate_limited", "Too many frames; slow down.", status=429)
        rate, burst = rooms.user_rate
        if rate and await rooms.throttle.hit(f"room-frames:{member.user.id}", int(burst), burst / rate) is not None:
            # The user's frames over all their sockets (on every process).
            client_msg_id = protocol.client_msg_id_of(protocol.decode_or_none(message))
            rooms.metrics.rate_limited.inc()
            raise ApiError("rate_limited", "Too many frames from your account; slow down.", status=429)
        member.refusals = 0
        frame = protocol.decode(message)
        client_msg_id = protocol.client_msg_id_of(frame)
        command = protocol.parse(frame)
        if command.type in protocol.HOST_COMMANDS and member.role != HOST:
            raise Forbidden("not_host", f"Only the host may {command.type.replace('_', ' ')}.")
        await COMMANDS[command.type](rooms, member, command)
        if command.type == "chat":
            # Receipt to written to every local socket (delivery happens inside the append).
            rooms.metrics.message_latency.labels("local").observe(time.perf_counter() - received)
    except ApiError as error:
        if isinstance(error, Unavailable):
            # Nothing was acknowledged; the client may retry.
            log.warning("room %s: %s", member.session_id, error.message)
        member.send(protocol.error_frame(error, client_msg_id))
    except Exception:
        log.exception("room %s: frame from user %s", member.session_id, member.user.id)
        error = ApiError("internal_error", "Something went wrong on our side.", status=500)
        member.send(protocol.error_frame(error, client_msg_id))


def _sender(member: Member, command: Command) -> dict:
    return {"user": member.user.to_json(), "role": member.role, "client_msg_id": command.client_msg_id}


async def on_chat(rooms: "Rooms", member: Member, command: Command) -> None:
    if rooms.hub.room(member.session_id).status != "live":
        raise Conflict("not_live", "The session is not live: chat opens when the host starts it.")
    await rooms.hub.append(member.session_id, "chat", text=command.text, **_sender(member, command))


async def on_question(rooms: "Rooms", member: Member, command: Command) -> None:
    # The cue sheet tells the room (Rooms.on_question_change), with this command's echo.
    await rooms.cuesheet.ask(member.session_id, member.user, command.text, command.anonymous,
                             echo=Echo(command.client_msg_id))


async def on_question_command(rooms: "Rooms", member: Member, command: Command) -> None:
    """vote, unvote, answer, pin, hide: the cue sheet's rules and transaction; it tells the room."""
    question, _ = await rooms.cuesheet.question(command.question_id, member.user)
    if question.session_id != member.session_id:
        raise NotFound("question_not_found", f"There is no question {command.question_id} in this session.")
    cuesheet, qid, user, echo = rooms.cuesheet, command.question_id, member.user, Echo(command.client_msg_id)
    if command.type == "vote":
        await cuesheet.vote(qid, user, echo=echo)
    elif command.type == "unvote":
        await cuesheet.unvote(qid, user, echo=echo)
    elif command.type == "answer":
        await cuesheet.answer(qid, user, command.value, echo=echo)
    elif command.type == "pin":
        await cuesheet.pin(qid, user, command.value, echo=echo)
    else:
        await cuesheet.hide(qid, user, command.value, echo=echo)


async def on_delete_message(rooms: "Rooms", member: Member, command: Command) -> None:
    await rooms.hub.append(member.session_id, "message_deleted", message_id=command.message_id,
                           **_sender(member, command))


async def on_raise_hand(rooms: "Rooms", member: Member, command: Command) -> None:
    if member.role == HOST:
        raise Conflict("is_host", "The host does not need to raise a hand.")
    if member.role == SPEAKER:
        raise Conflict("already_speaker", "You may speak already.")
    if not await rooms.room_log.set_member(member.session_id, "hands", member.user.id, True):
        raise Conflict("hand_already_raised", "Your hand is already raised.")
    await rooms.hub.append(member.session_id, "hand_raised", **_sender(member, command))


async def on_lower_hand(rooms: "Rooms", member: Member, command: Command) -> None:
    if not await rooms.room_log.set_member(member.session_id, "hands", member.user.id, False):
        raise Conflict("hand_not_raised", "Your hand is not raised.")
    await rooms.hub.append(member.session_id, "hand_lowered", **_sender(member, command))


async def _voice_target(rooms: "Rooms", member: Member, user_id: int, *groups: str) -> User:
    """The user a grant or revoke is for: someone in the room (connected, or in one of
    ``groups``). Anyone else gets the same answer whether or not the id exists, so that
    these commands cannot be used to list the service's users."""
    sid = member.session_id
    if user_id == rooms.hub.room(sid).host_id:
        raise Conflict("is_host", "The host always has voice.")
    in_room = any([user_id in await rooms.room_log.members(sid, group) for group in groups])
    if not in_room:
        in_room = bool(await rooms.room_log.presence_of(sid, [user_id]))
    target = await rooms.store.get_user(user_id) if in_room else None
    if target is None:
        raise NotFound("user_not_in_room", f"User {user_id} is not in this room (connected or with a hand up).")
    return target


async def on_grant_voice(rooms: "Rooms", member: Member, command: Command) -> None:
    sid = member.session_id
    target = await _voice_target(rooms, member, command.user_id, "hands")
    if not await rooms.room_log.set_member(sid, "speakers", target.id, True):
        raise Conflict("already_speaker", f"{target.display_name} may speak already.")
    if await rooms.room_log.set_member(sid, "hands", target.id, False):
        await rooms.hub.append(sid, "hand_lowered", user=target.to_json(), role=LISTENER, client_msg_id=None)
    await rooms.hub.append(sid, "voice_granted", user=target.to_json(), role=SPEAKER, by=member.user.to_json(),
                           client_msg_id=command.client_msg_id)


async def on_revoke_voice(rooms: "Rooms", member: Member, command: Command) -> None:
    """Idempotent: revoking from someone in the room who has no voice (any more) is told to
    the room all the same, so that every one of their connections ends up a listener."""
    target = await _voice_target(rooms, member, command.user_id, "speakers", "hands")
    await rooms.room_log.set_member(member.session_id, "speakers", target.id, False)
    await rooms.hub.append(member.session_id, "voice_revoked", user=target.to_json(), role=LISTENER,
                           by=member.user.to_json(), client_msg_id=command.client_msg_id)


async def on_end(rooms: "Rooms", member: Member, command: Command) -> None:
    # The schedule tells the room (Rooms.on_session_transition).
    await rooms.schedule.end(member.session_id, member.user)


async def on_voice_token(rooms: "Rooms", member: Member, command: Command) -> None:
    if rooms.hub.room(member.session_id).status != "live":
        raise Conflict("not_live", "Voice opens when the session goes live.")
    token = rooms.voice.tokens(member.session_id, member.user, publisher=member.role in (HOST, SPEAKER))
    member.send(orjson.dumps({"type": "voice_token", "client_msg_id": command.client_msg_id, **token}))


Handler = Callable[["Rooms", Member, Command], Awaitable[None]]

COMMANDS: dict[str, Handler] = {
    "chat": on_chat,
    "question": on_question,
    "vote": on_question_command,
    "unvote": on_question_command,
    "answer": on_question_command,
    "pin": on_question_command,
    "hide": on_question_command,
    "delete_message": on_delete_message,
    "raise_hand": on_raise_hand,
    "lower_hand": on_lower_hand,
    "grant_voice": on_grant_voice,
    "revoke_voice": on_revoke_voice,
    "end": on_end,
    "voice_token": on_voice_token,
}
