"""The live room's wire protocol: client frames in, validated commands out (see PROTOCOL.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from . import text
from .cuesheet import QUESTION_MAX
from .events import valid_event_id
from .errors import ApiError, BadRequest

# A chat line, not an essay; long enough for a pasted link with a sentence around it.
CHAT_MAX = 1000
CLIENT_MSG_ID_MAX = 64

# Commands anyone in the room may send, and those only the host may.
GUEST_COMMANDS = {"chat", "question", "vote", "unvote", "raise_hand", "lower_hand", "voice_token"}
HOST_COMMANDS = {"answer", "pin", "hide", "delete_message", "grant_voice", "revoke_voice", "end"}
QUESTION_COMMANDS = {"vote", "unvote", "answer", "pin", "hide"}


@dataclass
class Command:
    type: str
    client_msg_id: str | None
    text: str | None = None
    anonymous: bool = False
    question_id: int | None = None
    user_id: int | None = None
    message_id: str | None = None
    value: bool = True


def _id(frame: dict, name: str) -> int:
    value = frame.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadRequest("invalid_field", f"'{name}' must be a positive integer.")
    return value


def _text(frame: dict, limit: int) -> str:
    value = frame.get("text")
    if not isinstance(value, str):
        raise BadRequest("invalid_field", "'text' must be a string.")
    return text.clean(value, name="text", max_length=limit, multiline=True)


def client_msg_id_of(frame: Any) -> str | None:
    """The frame's client_msg_id if it has a usable one (errors echo it back)."""
    if isinstance(frame, dict):
        value = frame.get("client_msg_id")
        if isinstance(value, (str, int)) and not isinstance(value, bool) and len(str(value)) <= CLIENT_MSG_ID_MAX:
            return str(value)
    return None


def decode(message: str | bytes) -> Any:
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        raise BadRequest("invalid_json", "The frame is not valid JSON.") from None


def decode_or_none(message: str | bytes) -> Any:
    try:
        return orjson.loads(message)
    except orjson.JSONDecodeError:
        return None


def parse(frame: Any) -> Command:
    """A decoded client frame as a Command; an ApiError (sent back as an error frame) if it is not one."""
    if not isinstance(frame, dict):
        raise BadRequest("invalid_frame", "A frame is a JSON object with a 'type'.")
    kind = frame.get("type")
    if kind not in GUEST_COMMANDS and kind not in HOST_COMMANDS:
        raise ApiError("unknown_type", f"Unknown frame type {kind!r}.")
    raw_id = frame.get("client_msg_id")
    if raw_id is not None and client_msg_id_of(frame) is None:
        raise BadRequest("invalid_field", f"'client_msg_id' is a string of at most {CLIENT_MSG_ID_MAX} characters.")
    command = Command(type=kind, client_msg_id=client_msg_id_of(frame))
    if kind == "chat":
        command.text = _text(frame, CHAT_MAX)
    elif kind == "question":
        command.text = _text(frame, QUESTION_MAX)
        anonymous = frame.get("anonymous", False)
        if not isinstance(anonymous, bool):
            raise BadRequest("invalid_field", "'anonymous' must be true or false.")
        command.anonymous = anonymous
    elif kind in QUESTION_COMMANDS:
        command.question_id = _id(frame, "question_id")
        if kind in ("vote", "unvote"):
            if "value" in frame:
                raise BadRequest("invalid_field", f"'{kind}' takes no 'value' (send 'vote' or 'unvote').")
            return command
        value = frame.get("value", True)
        if not isinstance(value, bool):
            raise BadRequest("invalid_field", "'value' must be true or false.")
        command.value = value
    elif kind in ("grant_voice", "revoke_voice"):
        command.user_id = _id(frame, "user_id")
    elif kind == "delete_message":
        message_id = frame.get("message_id")
        if not valid_event_id(message_id):
            raise BadRequest("invalid_field", "'message_id' must be an event id such as '1764000000000-0'.")
        command.message_id = message_id
    return command


def error_frame(error: ApiError, client_msg_id: str | None) -> bytes:
    return orjson.dumps({"type": "error", "code": error.code, "message": error.message,
                         "client_msg_id": client_msg_id})
