"""The domain's records, as the store returns them and the API shows them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from .timeutil import iso

SESSION_STATUSES = ("scheduled", "live", "ended", "cancelled")


@dataclass(frozen=True)
class User:
    id: int
    username: str
    display_name: str

    def to_json(self) -> dict:
        return {"id": self.id, "username": self.username, "display_name": self.display_name}


@dataclass
class Session:
    id: int
    host: User
    title: str
    description: str
    tags: list[str]
    status: str
    starts_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    reservation_count: int
    reservation_target: int | None
    confirmed_at: datetime | None
    pinned_question_id: int | None
    question_count: int = 0
    vote_count: int = 0
    reserved: bool = False  # by the viewer

    def to_json(self) -> dict:
        target = self.reservation_target
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "tags": self.tags,
            "status": self.status,
            "host": self.host.to_json(),
            "starts_at": iso(self.starts_at),
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at),
            "created_at": iso(self.created_at),
            "reservations": self.reservation_count,
            "reservation_target": target,
            "target_reached": target is not None and self.reservation_count >= target,
            "confirmed": self.confirmed_at is not None,
            "confirmed_at": iso(self.confirmed_at),
            "reserved": self.reserved,
            "pinned_question_id": self.pinned_question_id,
            "counts": {"questions": self.question_count, "votes": self.vote_count},
        }


@dataclass
class Question:
    id: int
    session_id: int
    author: User
    text: str
    anonymous: bool
    votes: int
    hidden: bool
    answered_at: datetime | None
    created_at: datetime
    updated_at: datetime
    pinned: bool = False
    voted: bool = False  # by the viewer

    @property
    def answered(self) -> bool:
        return self.answered_at is not None

    def to_json(self, viewer_id: int | None) -> dict:
        """What a viewer sees: an anonymous question hides its author from everyone,
        the host included; only the author is told it is theirs."""
        return {
            "id": self.id,
            "session_id": self.session_id,
            "text": self.text,
            "author": None if self.anonymous else self.author.to_json(),
            "anonymous": self.anonymous,
            "mine": viewer_id == self.author.id,
            "votes": self.votes,
            "voted": self.voted,
            "answered": self.answered,
            "answered_at": iso(self.answered_at),
            "pinned": self.pinned,
            "hidden": self.hidden,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
        }

