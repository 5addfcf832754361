"""The welcome: the first frame on every connection, built from explicit inputs (no
sockets, no log, no database here, so it can be tested on its own)."""

from __future__ import annotations

from typing import Iterable

import orjson

from ..events import Event
from ..models import Question, Session, User
from .roles import role_of


def visible_history(events: list[Event]) -> list[Event]:
    """The history a newcomer reads: chat lines the host deleted are left out."""
    deleted = {orjson.loads(e.body).get("message_id") for e in events if e.type == "message_deleted"}
    if not deleted:
        return events
    return [e for e in events if not (e.type == "chat" and e.id in deleted)]


def build_welcome(*, session: Session, user: User, conn_id: str, presence: Iterable[bytes],
                  speakers: set[int], hands: set[int], questions: list[Question], history: list[Event],
                  position: str | None, resumed: bool, recovered: bool, voice_configured: bool) -> bytes:
    """``presence``: each connection's info as stored at join (its role is recomputed here:
    roles change after joining)."""
    host_id = session.host.id
    people = []
    for raw in presence:
        entry = orjson.loads(raw)
        entry["role"] = role_of(entry["user"]["id"], host_id, speakers)
        people.append(entry)
    return orjson.dumps({
        "type": "welcome",
        "session": session.to_json(),
        "you": {"user": user.to_json(), "role": role_of(user.id, host_id, speakers), "conn": conn_id},
        "presence": people,
        "speakers": sorted(speakers),
        "hands": sorted(hands),
        "questions": [q.to_json(user.id) for q in questions],
        "history": [orjson.Fragment(e.to_json_bytes()) for e in history],
        "position": position,
        "resumed": resumed,
        "recovered": recovered,
        "voice": {"configured": voice_configured},
    })
