"""The room's events for the cue sheet's changes, built in one place (anonymity handled once)."""

from __future__ import annotations

from typing import Any

from ..cuesheet import QuestionChange
from ..models import Question, Session


def public_question(question: Question) -> dict:
    """A question as the whole room may see it (no per-viewer fields)."""
    if question.hidden:
        return {"id": question.id, "hidden": True}
    body = question.to_json(None)
    del body["mine"], body["voted"]
    return body


def question_event(change: QuestionChange, session: Session, role: str) -> tuple[str, dict[str, Any]]:
    """(event type, fields) telling the room of ``change``; ``role`` is the actor's.

    Whoever acts on their own anonymous question (asks, edits, deletes, votes for it) is
    not named: the event would tie them to it for everyone in the room and in the log."""
    question, actor = change.question, change.actor
    if question.anonymous and actor.id == question.author.id:
        who: dict[str, Any] = {"user": None, "role": None}
    else:
        who = {"user": actor.to_json(), "role": role}
    who["client_msg_id"] = change.echo.client_msg_id if change.echo else None
    if change.action == "ask":
        return "question", {"question": public_question(question), **who}
    body = {"id": question.id, "deleted": True} if change.action == "delete" else public_question(question)
    fields: dict[str, Any] = {"action": change.action, "question": body,
                              "pinned_question_id": session.pinned_question_id}
    if change.value is not None:
        fields["value"] = change.value
    return "question_updated", {**fields, **who}
