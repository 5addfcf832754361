"""The audience: everyone in a room who is not on the stage, told as a count (and, while
the room is small, by name) in at most one `audience` event per room and interval."""

from __future__ import annotations

import orjson

# The audience (everyone not on stage) is told as one `audience` event per room at most this
# often, whatever the arrival rate: a join costs the others O(1) frames, not O(N).
AUDIENCE_INTERVAL_SECONDS = 1.0
# Up to this many people in a room, and this many arrivals and departures since the last
# event, an `audience` event names who came and went; past either, the count alone (a list
# of a hundred arrivals is noise to a person, and bytes to every socket and every welcome's
# history).
AUDIENCE_NAMES_MAX = 50
AUDIENCE_CHANGES_NAMED_MAX = 10


def audience_fields(count: int, changes: list[bytes]) -> dict:
    """An `audience` event's fields: the count, and who came and went if the room is small."""
    if count > AUDIENCE_NAMES_MAX or len(changes) > AUDIENCE_CHANGES_NAMED_MAX:
        return {"count": count, "named": False, "joined": [], "left": []}
    joined, left = [], []
    for raw in changes:
        change = orjson.loads(raw)
        (joined if "joined" in change else left).append(change.get("joined") or change.get("left"))
    return {"count": count, "named": True, "joined": joined, "left": left}
