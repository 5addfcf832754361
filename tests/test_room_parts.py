"""The live room's parts that need no socket: the command table against the protocol, the
one role rule, the welcome built from explicit inputs, and the question events."""

from datetime import datetime, timezone

import orjson

from ask2live import protocol
from ask2live.cuesheet import Echo, QuestionChange
from ask2live.events import Event
from ask2live.models import Question, Session, User
from ask2live.rooms.commands import COMMANDS
from ask2live.cache.roomlog import AudiencePage
from ask2live.rooms.cue_cache import RoomQuestions
from ask2live.rooms.question_events import public_question, question_event
from ask2live.rooms.roles import HOST, LISTENER, SPEAKER, role_of
from ask2live.rooms.welcome import build_welcome, visible_history

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
HOST_USER = User(1, "minji", "민지")
GUEST = User(2, "joon", "준")


def session(**fields) -> Session:
    values = dict(id=7, host=HOST_USER, title="AMA", description="", tags=[], status="live", starts_at=NOW,
                  started_at=NOW, ended_at=None, created_at=NOW, reservation_count=0, reservation_target=None,
                  confirmed_at=None, pinned_question_id=None)
    values.update(fields)
    return Session(**values)


def question(**fields) -> Question:
    values = dict(id=11, session_id=7, author=GUEST, text="질문 있어요", anonymous=False, votes=0, voted=False,
                  answered_at=None, pinned=False, hidden=False, created_at=NOW, updated_at=NOW)
    values.update(fields)
    return Question(**values)


def test_the_command_table_is_exactly_the_protocols_commands():
    assert set(COMMANDS) == protocol.GUEST_COMMANDS | protocol.HOST_COMMANDS


def test_role_of():
    assert role_of(1, 1, {1}) == HOST
    assert role_of(2, 1, {2}) == SPEAKER
    assert role_of(3, 1, {2}) == LISTENER


def test_the_welcome_recomputes_roles_and_carries_history_and_questions_without_reencoding():
    chat = Event("100-0", 7, "chat", b'{"type":"chat","text":"\xec\x95\x88\xeb\x85\x95"}')
    stage = [orjson.dumps({"user": HOST_USER.to_json(), "role": "listener", "conn": "a"}),
             orjson.dumps({"user": GUEST.to_json(), "role": "listener", "conn": "b"})]
    questions = RoomQuestions([public_question(question())], None).top(50)
    welcome = orjson.loads(build_welcome(
        session=session(), user=GUEST, conn_id="b", stage=stage, speakers={2}, hands=set(),
        audience=AudiencePage(1234, stage[:1], 17), questions=questions, history=[chat], position="100-0",
        resumed=False, recovered=False, voice_configured=False))
    assert welcome["you"] == {"user": GUEST.to_json(), "role": SPEAKER, "conn": "b"}
    assert [p["role"] for p in welcome["stage"]] == [HOST, SPEAKER]
    assert welcome["audience"] == {"count": 1234, "people": [{"user": HOST_USER.to_json(), "role": HOST, "conn": "a"}],
                                   "next": 17}
    assert welcome["history"] == [{"id": "100-0", "type": "chat", "text": "안녕"}]
    assert welcome["questions"][0]["text"] == "질문 있어요" and "mine" not in welcome["questions"][0]
    assert welcome["speakers"] == [2] and welcome["position"] == "100-0"


def test_the_cue_cache_follows_question_events_in_the_cue_sheets_order():
    first, second = public_question(question(id=1, votes=3)), public_question(question(id=2, votes=1))
    cache = RoomQuestions([first, second], None)

    def event(kind: str, q: dict, **fields) -> Event:
        return Event("1-0", 7, kind, orjson.dumps({"type": kind, "question": q, **fields}))

    assert [q["id"] for q in orjson.loads(cache.top(50))] == [1, 2]
    cache.apply(event("question_updated", {**second, "votes": 5}, action="vote", pinned_question_id=None))
    assert [q["id"] for q in orjson.loads(cache.top(50))] == [2, 1]
    cache.apply(event("question_updated", {**first, "pinned": True}, action="pin", pinned_question_id=1))
    assert [(q["id"], q["pinned"]) for q in orjson.loads(cache.top(50))] == [(1, True), (2, False)]
    cache.apply(event("question", public_question(question(id=3, votes=0, text="새 질문"))))
    cache.apply(event("question_updated", {"id": 2, "hidden": True}, action="hide", pinned_question_id=1))
    assert [q["id"] for q in orjson.loads(cache.top(50))] == [1, 3]
    cache.apply(event("question_updated", {"id": 3, "deleted": True}, action="delete", pinned_question_id=1))
    assert [q["id"] for q in orjson.loads(cache.top(1))] == [1]


def test_visible_history_leaves_out_deleted_chat():
    kept = Event("1-0", 7, "chat", b'{"type":"chat"}')
    gone = Event("2-0", 7, "chat", b'{"type":"chat"}')
    deletion = Event("3-0", 7, "message_deleted", b'{"type":"message_deleted","message_id":"2-0"}')
    assert visible_history([kept, gone, deletion]) == [kept, deletion]


def test_a_question_event_never_names_the_author_of_an_anonymous_question():
    anonymous = question(anonymous=True)
    for action in ("ask", "edit", "delete", "vote"):
        kind, fields = question_event(QuestionChange(action, anonymous, GUEST), session(), LISTENER)
        assert fields["user"] is None and fields["role"] is None, action
        assert b'"joon"' not in orjson.dumps(fields), action
    # Someone else's vote on it names the voter, not the author.
    _, fields = question_event(QuestionChange("vote", anonymous, HOST_USER, echo=Echo("c1")), session(), HOST)
    assert fields["user"] == HOST_USER.to_json() and fields["client_msg_id"] == "c1"
    assert fields["question"]["author"] is None


def test_question_updated_carries_value_only_for_the_hosts_switches():
    _, vote = question_event(QuestionChange("vote", question(), HOST_USER), session(), HOST)
    _, pin = question_event(QuestionChange("pin", question(), HOST_USER, value=False), session(), HOST)
    assert "value" not in vote and pin["value"] is False
    kind, deleted = question_event(QuestionChange("delete", question(), GUEST), session(), LISTENER)
    assert kind == "question_updated" and deleted["question"] == {"id": 11, "deleted": True}
