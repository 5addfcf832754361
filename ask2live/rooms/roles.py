"""Who is who in a room: one rule, used for the welcome, the presence and every event."""

from __future__ import annotations

from typing import Collection

HOST, SPEAKER, LISTENER = "host", "speaker", "listener"


def role_of(user_id: int, host_id: int, speakers: Collection[int]) -> str:
    """The host is always the host; a user granted voice is a speaker; everyone else listens."""
    if user_id == host_id:
        return HOST
    if user_id in speakers:
        return SPEAKER
    return LISTENER
