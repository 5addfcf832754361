"""The welcome: the first frame on every connection, built from explicit inputs (no
sockets, no log, no database here, so it can be tested on its own)."""

from __future__ import annotations

from typing import Iterable

import orjson

from ..cache.roomlog import AudiencePage
from ..events import Event
from ..models import Session, User
from .roles import role_of


QUESTION_EVENTS = ("question", "question_updated")


def visible_history(events: list[Event]) -> list[Event]:
    """The history as a newcomer may read it: the room as it is now, not as it was.

    A chat line the host deleted is left out, and so are `audience` events: the welcome says
    the count itself, and during a join storm one a second would fill the history (and grow
    every later welcome) with counts nobody needs any more. Every event about a question carries the
    question as its last event there leaves it: an edit's earlier wording is gone, and a
    question hidden or deleted since is left out but for that last event (``{"id",
    "hidden"}`` or ``{"id", "deleted"}``). The history is the room's most recent events, so
    every change after an event in it is in it too."""
    events = [e for e in events if e.type != "audience"]
    deleted_chat: set[str] = set()
    parsed: dict[str, dict] = {}
    latest: dict[int, tuple[str, dict]] = {}  # question id → (last event id, its question)
    for event in events:
        if event.type == "message_deleted":
            deleted_chat.add(orjson.loads(event.body).get("message_id"))
        elif event.type in QUESTION_EVENTS:
            fields = parsed[event.id] = orjson.loads(event.body)
            latest[fields["question"]["id"]] = (event.id, fields["question"])
    if not deleted_chat and not parsed:
        return events
    visible = []
    for event in events:
        if event.type == "chat" and event.id in deleted_chat:
            continue
        fields = parsed.get(event.id)
        if fields is not None:
            last_id, final = latest[fields["question"]["id"]]
            if event.id != last_id:
                if final.get("hidden") or final.get("deleted"):
                    continue
                if fields["question"] != final:
                    fields["question"] = final
                    event = Event(event.id, event.session_id, event.type, orjson.dumps(fields), event.origin)
        visible.append(event)
    return visible


def build_welcome(*, session: Session, user: User, conn_id: str, stage: Iterable[bytes], speakers: set[int],
                  hands: set[int], audience: AudiencePage, questions: bytes, history: list[Event],
                  position: str | None, resumed: bool, recovered: bool, voice_configured: bool) -> bytes:
    """``stage``: the connections of the host, the speakers and those with a hand up, each
    info as stored at join (roles are recomputed here: they change after joining);
    ``audience``: the room's count and first page; ``questions``: the encoded top list.
    Nothing here grows with the room's size."""
    host_id = session.host.id

    def with_role(raw: bytes) -> dict:
        entry = orjson.loads(raw)
        entry["role"] = role_of(entry["user"]["id"], host_id, speakers)
        return entry

    return orjson.dumps({
        "type": "welcome",
        "session": session.to_json(),
        "you": {"user": user.to_json(), "role": role_of(user.id, host_id, speakers), "conn": conn_id},
        "stage": [with_role(raw) for raw in stage],
        "audience": {"count": audience.count, "people": [with_role(raw) for raw in audience.entries],
                     "next": audience.next},
        "speakers": sorted(speakers),
        "hands": sorted(hands),
        "questions": orjson.Fragment(questions),
        "history": [orjson.Fragment(e.to_json_bytes()) for e in history],
        "position": position,
        "resumed": resumed,
        "recovered": recovered,
        "voice": {"configured": voice_configured},
    })
