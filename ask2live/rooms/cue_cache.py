"""The cue sheet as the room shows it, kept per room on each process.

A welcome carries the room's top questions. Asking the database for them on every join
would make a join storm (ten thousand people arriving in the first minute of an AMA) ten
thousand cue-sheet queries; instead each process loads a room's questions once, when its
first member arrives, and keeps them current from the room's own `question` and
`question_updated` events, which every process receives in log order. An event carries
the question's whole public state after the change, so applying one is a plain replace.

What it holds is what the room may see: the public form of each question (as in events:
no "mine" or "voted", which are per viewer and come from the REST cue sheet), hidden
questions left out.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson

from ..events import Event

# A room keeps this many of its questions (the top ones when it is loaded; then every one
# asked while it is open): the welcome shows 50, and past a few thousand a room's questions
# are read through the REST cue sheet's pages anyway.
CACHE_MAX = 2000

Loader = Callable[[int], Awaitable[list[dict]]]


def _top_key(q: dict, pinned: int | None) -> tuple:
    """The cue sheet's order: the pinned question, open ones by votes (ties: the oldest first),
    answered ones last in the same order."""
    return (q["id"] != pinned, bool(q.get("answered")), -q.get("votes", 0), q.get("created_at") or "", q["id"])


class RoomQuestions:
    def __init__(self, questions: list[dict], pinned: int | None) -> None:
        self._questions = {q["id"]: q for q in questions if not q.get("hidden")}
        self._pinned = pinned
        self._top: dict[int, bytes] = {}  # limit → the encoded top list, until the next change

    def apply(self, event: Event) -> None:
        if event.type not in ("question", "question_updated"):
            return
        fields = orjson.loads(event.body)
        question: dict[str, Any] = fields["question"]
        if "pinned_question_id" in fields:
            self._pinned = fields["pinned_question_id"]
        if question.get("hidden") or question.get("deleted"):
            self._questions.pop(question["id"], None)
        elif question["id"] in self._questions or len(self._questions) < CACHE_MAX:
            self._questions[question["id"]] = question
        self._top.clear()

    def top(self, limit: int) -> bytes:
        """The top ``limit`` questions as a JSON array, encoded once per change."""
        encoded = self._top.get(limit)
        if encoded is None:
            ordered = sorted(self._questions.values(), key=lambda q: _top_key(q, self._pinned))[:limit]
            for q in ordered:
                q["pinned"] = q["id"] == self._pinned
            encoded = self._top[limit] = orjson.dumps(ordered)
        return encoded
