"""Pre-questions and the cue sheet over REST. A live room hears of every change from the
cue sheet itself (CueSheet.on_change), not from here."""

from __future__ import annotations

from ..cuesheet import QUESTION_MAX
from ..errors import Invalid
from .base import ApiHandler, int_id
from .sessions import page, page_params

SORTS = ("top", "recent")


class SessionQuestionsHandler(ApiHandler):
    async def get(self, session_id: str) -> None:
        sort = self.get_query_argument("sort", "top")
        if sort not in SORTS:
            raise Invalid("invalid_sort", "sort is 'top' or 'recent'.")
        limit, offset = page_params(self)
        questions = await self.services.cuesheet.list(int_id(session_id), self.user, sort, limit, offset)
        self.send(page([q.to_json(self.user.id) for q in questions], limit, offset))

    async def post(self, session_id: str) -> None:
        fields = self.fields()
        text = fields.text("text", max_length=QUESTION_MAX, multiline=True)
        anonymous = fields.boolean("anonymous", default=False)
        question = await self.services.cuesheet.ask(int_id(session_id), self.user, text, anonymous)
        self.send({"question": question.to_json(self.user.id)}, status=201)


class QuestionHandler(ApiHandler):
    async def get(self, question_id: str) -> None:
        question, _ = await self.services.cuesheet.question(int_id(question_id), self.user)
        self.send({"question": question.to_json(self.user.id)})

    async def patch(self, question_id: str) -> None:
        text = self.fields().text("text", max_length=QUESTION_MAX, multiline=True)
        question = await self.services.cuesheet.edit(int_id(question_id), self.user, text)
        self.send({"question": question.to_json(self.user.id)})

    async def delete(self, question_id: str) -> None:
        await self.services.cuesheet.delete(int_id(question_id), self.user)
        self.set_status(204)
        self.finish()


class VoteHandler(ApiHandler):
    async def post(self, question_id: str) -> None:
        question = await self.services.cuesheet.vote(int_id(question_id), self.user)
        self.send({"question": question.to_json(self.user.id)})

    async def delete(self, question_id: str) -> None:
        question = await self.services.cuesheet.unvote(int_id(question_id), self.user)
        self.send({"question": question.to_json(self.user.id)})


class ModerationHandler(ApiHandler):
    """POST /api/questions/{id}/(answer|pin|hide) with an optional {"value": false} to undo."""

    async def post(self, question_id: str, action: str) -> None:
        value = self.fields().boolean("value", default=True)
        cuesheet = self.services.cuesheet
        qid = int_id(question_id)
        if action == "answer":
            question = await cuesheet.answer(qid, self.user, value)
        elif action == "pin":
            question = await cuesheet.pin(qid, self.user, value)
        else:
            question = await cuesheet.hide(qid, self.user, value)
        self.send({"question": question.to_json(self.user.id)})
