"""Questions (the host's cue sheet): asking, voting and the host's moderation, apart from HTTP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Awaitable, Callable, NamedTuple

from .errors import Conflict, Forbidden, NotFound
from .models import Question, Session, User
from .schedule import Schedule
from .store import IdAllocator, Store
from .timeutil import utcnow

# Long enough for a real question with context, short enough to read aloud.
QUESTION_MAX = 500
OPEN_STATUSES = ("scheduled", "live")


class Echo(NamedTuple):
    """A change made by a live-room command: the room hears of it whatever the session's
    status, and its event carries the command's ``client_msg_id`` back to the sender."""

    client_msg_id: str | None


@dataclass(frozen=True)
class QuestionChange:
    """A change the cue sheet committed: told to its listeners (the live room) afterwards."""

    # "ask", "edit", "delete", "vote", "unvote", "answer", "pin" or "hide".
    action: str
    # The question after the change (for "delete": as it was before).
    question: Question
    # Who made it.
    actor: User
    # The boolean given to answer, pin and hide; None for the other actions.
    value: bool | None = None
    # Set when a live-room command made the change; None for the REST API.
    echo: Echo | None = None


ChangeListener = Callable[[QuestionChange], Awaitable[None]]


class CueSheet:
    def __init__(self, store: Store, schedule: Schedule, ids: IdAllocator) -> None:
        self._store = store
        self._schedule = schedule
        self._ids = ids
        self._listeners: list[ChangeListener] = []

    def on_change(self, listener: ChangeListener) -> None:
        """Call ``listener(change)`` after every committed change to a question."""
        self._listeners.append(listener)

    async def _changed(self, action: str, question: Question, actor: User, value: bool | None = None,
                       echo: Echo | None = None) -> Question:
        change = QuestionChange(action, question, actor, value, echo)
        for listener in self._listeners:
            await listener(change)
        return question

    async def _open_session(self, session_id: int, viewer: User) -> Session:
        session = await self._schedule.get(session_id, viewer)
        if session.status not in OPEN_STATUSES:
            raise Conflict("session_closed", f"The session is {session.status}; it takes no more questions or votes.")
        return session

    async def question(self, question_id: int, viewer: User | None) -> tuple[Question, Session]:
        """A question the viewer may see (a hidden one only to its host), with its session."""
        question = await self._store.get_question(question_id, viewer.id if viewer else None)
        if question is None:
            raise NotFound("question_not_found", f"There is no question {question_id}.")
        session = await self._schedule.get(question.session_id, viewer)
        if question.hidden and (viewer is None or viewer.id != session.host.id):
            raise NotFound("question_not_found", f"There is no question {question_id}.")
        return question, session

    async def ask(self, session_id: int, viewer: User, text: str, anonymous: bool, echo: Echo | None = None) -> Question:
        await self._open_session(session_id, viewer)
        question_id = await self._ids.next_id()
        await self._store.create_question(question_id, session_id, viewer.id, text, anonymous, utcnow())
        question, _ = await self.question(question_id, viewer)
        return await self._changed("ask", question, viewer, echo=echo)

    async def list(self, session_id: int, viewer: User | None, sort: str, limit: int, offset: int) -> list[Question]:
        session = await self._schedule.get(session_id, viewer)
        is_host = viewer is not None and viewer.id == session.host.id
        return await self._store.list_questions(
            session_id, sort=sort, include_hidden=is_host, viewer_id=viewer.id if viewer else None,
            limit=limit, offset=offset,
        )

    async def _own(self, question_id: int, viewer: User, action: str) -> Question:
        question, _ = await self.question(question_id, viewer)
        if question.author.id != viewer.id:
            raise Forbidden("not_author", f"Only the author may {action} this question.")
        if question.answered:
            raise Conflict("question_answered", f"An answered question cannot be {action.rstrip('e')}ed.")
        return question

    async def edit(self, question_id: int, viewer: User, text: str) -> Question:
        await self._own(question_id, viewer, "edit")
        if not await self._store.edit_question(question_id, text, utcnow()):
            raise Conflict("question_answered", "The question was answered meanwhile.")
        return await self._changed("edit", (await self.question(question_id, viewer))[0], viewer)

    async def delete(self, question_id: int, viewer: User) -> None:
        question = await self._own(question_id, viewer, "delete")
        if not await self._store.delete_question(question_id):
            raise Conflict("question_answered", "The question was answered meanwhile.")
        await self._changed("delete", question, viewer)

    async def vote(self, question_id: int, viewer: User, echo: Echo | None = None) -> Question:
        question, session = await self.question(question_id, viewer)
        await self._open_session(session.id, viewer)
        if await self._store.vote(question_id, viewer.id, utcnow()) is None:
            raise Conflict("already_voted", "You have already voted for this question.")
        return await self._changed("vote", (await self.question(question_id, viewer))[0], viewer, echo=echo)

    async def unvote(self, question_id: int, viewer: User, echo: Echo | None = None) -> Question:
        question, session = await self.question(question_id, viewer)
        await self._open_session(session.id, viewer)
        if await self._store.unvote(question_id, viewer.id) is None:
            raise NotFound("not_voted", "You have not voted for this question.")
        return await self._changed("unvote", (await self.question(question_id, viewer))[0], viewer, echo=echo)

    async def _moderated(self, question_id: int, viewer: User, action: str) -> tuple[Question, Session]:
        question, session = await self.question(question_id, viewer)
        if session.host.id != viewer.id:
            raise Forbidden("not_host", f"Only the host may {action} a question.")
        return question, session

    async def answer(self, question_id: int, viewer: User, answered: bool, echo: Echo | None = None) -> Question:
        await self._moderated(question_id, viewer, "answer")
        await self._store.set_answered(question_id, answered, utcnow())
        return await self._changed("answer", (await self.question(question_id, viewer))[0], viewer, answered, echo)

    async def pin(self, question_id: int, viewer: User, pinned: bool, echo: Echo | None = None) -> Question:
        question, session = await self._moderated(question_id, viewer, "pin")
        if pinned and question.hidden:
            raise Conflict("question_hidden", "A hidden question cannot be pinned.")
        if pinned and question.answered:
            raise Conflict("question_answered", "An answered question cannot be pinned.")
        if not await self._store.set_pinned(session.id, question_id, pinned):
            question, _ = await self.question(question_id, viewer)  # 404 if it was deleted meanwhile
            if question.hidden:
                raise Conflict("question_hidden", "The question was hidden meanwhile.")
            raise Conflict("question_answered", "The question was answered meanwhile.")
        return await self._changed("pin", (await self.question(question_id, viewer))[0], viewer, pinned, echo)

    async def hide(self, question_id: int, viewer: User, hidden: bool, echo: Echo | None = None) -> Question:
        await self._moderated(question_id, viewer, "hide")
        await self._store.set_hidden(question_id, hidden, utcnow())
        return await self._changed("hide", (await self.question(question_id, viewer))[0], viewer, hidden, echo)
