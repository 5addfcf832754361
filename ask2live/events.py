"""The room's events: one vocabulary for the live room, both room logs and the cold store.

An event id is a Redis stream id, "<ms>-<seq>": both room logs hand out ids of this shape,
the cold store keeps them, and a client resumes from one with ``?since=``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, NamedTuple

import orjson

# "<ms>-<seq>": 15 digits of milliseconds reach the year 33658; a sequence fits 32 bits.
EVENT_ID_RE = re.compile(r"^[0-9]{1,15}-[0-9]{1,10}$")


def parse_event_id(value: str) -> tuple[int, int]:
    ms, seq = value.split("-")
    return int(ms), int(seq)


def valid_event_id(value: object) -> bool:
    return isinstance(value, str) and bool(EVENT_ID_RE.match(value))


@dataclass(frozen=True)
class Event:
    """One room event. ``body`` is its JSON object *without* the id, which is the log's."""

    id: str
    session_id: int
    type: str
    body: bytes
    # The room log instance (server process) that appended it; "" when unknown (history).
    origin: str = field(default="", compare=False)

    @property
    def key(self) -> tuple[int, int]:
        return parse_event_id(self.id)

    def to_json_bytes(self) -> bytes:
        """The event as clients see it: ``{"id": ..., <body>}``, built without re-encoding."""
        rest = self.body[1:]
        if rest == b"}":
            return b'{"id":"' + self.id.encode() + b'"}'
        return b'{"id":"' + self.id.encode() + b'",' + rest


def merge_events(*runs: list[Event]) -> list[Event]:
    """Events from several sources (the cold store, a process's unflushed ones), each once,
    in log order."""
    return sorted({e.id: e for run in runs for e in run}.values(), key=lambda e: e.key)


class Catchup(NamedTuple):
    events: list[Event]
    # True only when ``events`` is provably everything after the asked position.
    complete: bool
    # Where the events came from: the log itself, or (in part) the cold store.
    source: str = "log"


# The events that change who is on stage (voice granted) or waiting (hand raised).
STAGE_EVENTS = ("voice_granted", "voice_revoked", "hand_raised", "hand_lowered")


def stage_of(events: Iterable[Event]) -> tuple[set[int], set[int]]:
    """(speakers, raised hands) after these events, in log order: the stage a room log
    rebuilds from the cold store when it has lost its own (a Redis wipe, a restart)."""
    speakers: set[int] = set()
    hands: set[int] = set()
    for event in events:
        if event.type not in STAGE_EVENTS:
            continue
        user_id = orjson.loads(event.body)["user"]["id"]
        group = speakers if event.type.startswith("voice") else hands
        if event.type in ("voice_granted", "hand_raised"):
            group.add(user_id)
        else:
            group.discard(user_id)
    return speakers, hands
