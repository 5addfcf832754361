"""Live room commands over real WebSockets, on both set-ups (SQLite + in-process log,
MariaDB + Redis): live questions, votes, the host's moderation, hands, voice grants,
message deletion and ending the session. Voice is not configured here (the default
config); tests/test_voice.py runs with Agora configured."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from conftest import db_rows
from roomclient import RoomClient, live_session

pytestmark = pytest.mark.gen_test


# ---------------------------------------------------------------------------- helpers


async def ask(room: RoomClient, text: str = "What is next?", **fields: Any) -> dict:
    """A live question over the socket; the question as its own event shows it."""
    await room.send({"type": "question", "text": text, "client_msg_id": "ask", **fields})
    event = await room.next("question", client_msg_id="ask")
    return event["question"]


async def rest_question(account, qid) -> dict:
    r = await account.get(f"/api/questions/{qid}")
    assert r.status == 200, r
    return r.json["question"]


async def get_session(account, sid) -> dict:
    r = await account.get(f"/api/sessions/{sid}")
    assert r.status == 200, r
    return r.json["session"]


async def session_state(services, sid) -> list[dict]:
    return await db_rows(services, "SELECT status, pinned_question_id FROM sessions WHERE id = ?", sid)


async def questions_state(services, sid) -> list[dict]:
    return await db_rows(services, "SELECT id, votes, hidden, answered_at FROM questions WHERE session_id = ?"
                         " ORDER BY id", sid)


# ---------------------------------------------------------------------------- live questions


async def test_live_question_reaches_every_member_with_the_senders_client_msg_id(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[1].send({"type": "question", "text": "  How did you start?  ", "client_msg_id": "q1"})
    events = [await s.next("question") for s in sockets]
    for event in events:
        assert event["client_msg_id"] == "q1"
        assert event["user"]["id"] == alice.id and event["role"] == "listener"
        q = event["question"]
        assert q["text"] == "How did you start?" and q["votes"] == 0
        assert q["session_id"] == sid and q["author"]["id"] == alice.id
        assert isinstance(q["id"], int) and q["id"] > 0
        assert event["id"]  # a log event id
    assert len({e["question"]["id"] for e in events}) == 1
    assert {e["id"] for e in events} == {events[0]["id"]}


async def test_live_question_is_listed_with_the_pre_questions(api, rooms):
    host = await api.user()
    sid = (await host.session())["id"]
    alice = await api.user()
    pre = await alice.question(sid, "Asked before the start")
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    room = await rooms(alice, sid)
    live = await ask(room, "Asked live")
    r = await host.get(f"/api/sessions/{sid}/questions?sort=recent")
    assert r.status == 200, r
    items = r.json["items"]
    assert [q["id"] for q in items] == [live["id"], pre["id"]]
    assert items[0]["text"] == "Asked live" and items[0]["author"]["id"] == alice.id
    assert (await rest_question(alice, live["id"]))["mine"] is True


async def test_anonymous_live_question_hides_the_author_but_the_row_keeps_it(api, rooms, services):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[1].send({"type": "question", "text": "A shy one", "anonymous": True, "client_msg_id": "anon"})
    for s in sockets:
        event = await s.next("question")
        assert event["user"] is None and event["role"] is None
        assert event["client_msg_id"] == "anon"
        assert event["question"]["author"] is None and event["question"]["anonymous"] is True
    qid = event["question"]["id"]
    assert (await rest_question(host, qid))["author"] is None
    rows = await db_rows(services, "SELECT author_id, anonymous FROM questions WHERE id = ?", qid)
    assert int(rows[0]["author_id"]) == alice.id and rows[0]["anonymous"]


# ---------------------------------------------------------------------------- votes


async def test_vote_and_unvote_broadcast_the_new_count(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    qid = (await ask(sockets[1]))["id"]
    await sockets[2].send({"type": "vote", "question_id": qid, "client_msg_id": "v1"})
    for s in sockets:
        event = await s.next("question_updated", action="vote")
        assert event["question"]["id"] == qid and event["question"]["votes"] == 1
        assert event["client_msg_id"] == "v1" and event["user"]["id"] == bob.id
    await sockets[0].send({"type": "vote", "question_id": qid})
    for s in sockets:
        assert (await s.next("question_updated", action="vote"))["question"]["votes"] == 2
    await sockets[2].send({"type": "unvote", "question_id": qid, "client_msg_id": "u1"})
    for s in sockets:
        event = await s.next("question_updated", action="unvote")
        assert event["question"]["votes"] == 1 and event["client_msg_id"] == "u1"
    got = await rest_question(bob, qid)
    assert got["votes"] == 1 and got["voted"] is False
    assert (await rest_question(host, qid))["voted"] is True


async def test_voting_twice_is_already_voted_and_the_count_stays(api, rooms, services):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    qid = (await ask(sockets[1]))["id"]
    await sockets[2].send({"type": "vote", "question_id": qid, "client_msg_id": "first"})
    await sockets[2].next("question_updated", action="vote")
    await sockets[0].next("question_updated", action="vote")
    await sockets[2].send({"type": "vote", "question_id": qid, "client_msg_id": "second"})
    await sockets[2].error("already_voted", "second")
    await sockets[0].expect_none("question_updated")
    assert (await rest_question(bob, qid))["votes"] == 1
    assert len(await db_rows(services, "SELECT user_id FROM question_votes WHERE question_id = ?", qid)) == 1


async def test_unvote_without_a_vote_is_not_voted(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    qid = (await ask(sockets[1]))["id"]
    await sockets[0].send({"type": "unvote", "question_id": qid, "client_msg_id": "nv"})
    await sockets[0].error("not_voted", "nv")
    await sockets[1].expect_none("question_updated")
    assert (await rest_question(host, qid))["votes"] == 0


async def test_voting_on_another_sessions_question_is_question_not_found(api, rooms, services):
    sid, (host, alice), sockets = await live_session(api, rooms)
    other_host = await api.user()
    other_sid = (await other_host.session())["id"]
    foreign = await alice.question(other_sid, "Elsewhere")
    for kind in ("vote", "unvote"):
        await sockets[1].send({"type": kind, "question_id": foreign["id"], "client_msg_id": kind})
        await sockets[1].error("question_not_found", kind)
    await sockets[0].expect_none("question_updated")
    assert (await rest_question(other_host, foreign["id"]))["votes"] == 0
    assert await db_rows(services, "SELECT user_id FROM question_votes") == []


# ---------------------------------------------------------------------------- host moderation


async def test_answer_is_broadcast_and_value_false_undoes_it(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    qid = (await ask(sockets[1]))["id"]
    await sockets[0].send({"type": "answer", "question_id": qid, "client_msg_id": "a1"})
    for s in sockets:
        event = await s.next("question_updated", action="answer")
        assert event["question"]["id"] == qid and event["question"]["answered"] is True
        assert event["value"] is True and event["client_msg_id"] == "a1"
        assert "pinned_question_id" in event and event["pinned_question_id"] is None
    assert (await rest_question(alice, qid))["answered"] is True
    await sockets[0].send({"type": "answer", "question_id": qid, "value": False})
    for s in sockets:
        event = await s.next("question_updated", action="answer")
        assert event["question"]["answered"] is False and event["value"] is False
    assert (await rest_question(alice, qid))["answered"] is False


async def test_pin_broadcasts_the_pinned_question_id_and_unpin_clears_it(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    qid = (await ask(sockets[1]))["id"]
    await sockets[0].send({"type": "pin", "question_id": qid})
    for s in sockets:
        event = await s.next("question_updated", action="pin")
        assert event["pinned_question_id"] == qid and event["question"]["pinned"] is True
    assert (await get_session(alice, sid))["pinned_question_id"] == qid
    await sockets[0].send({"type": "pin", "question_id": qid, "value": False})
    for s in sockets:
        event = await s.next("question_updated", action="pin")
        assert event["pinned_question_id"] is None and event["question"]["pinned"] is False
    assert (await get_session(alice, sid))["pinned_question_id"] is None


async def test_pinning_a_second_question_unpins_the_first(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    first = (await ask(sockets[1], "First"))["id"]
    second = (await ask(sockets[1], "Second"))["id"]
    await sockets[0].send({"type": "pin", "question_id": first})
    assert (await sockets[1].next("question_updated", action="pin"))["pinned_question_id"] == first
    await sockets[0].send({"type": "pin", "question_id": second})
    event = await sockets[1].next("question_updated", action="pin")
    assert event["pinned_question_id"] == second and event["question"]["id"] == second
    assert (await rest_question(alice, first))["pinned"] is False
    assert (await rest_question(alice, second))["pinned"] is True
    assert (await get_session(host, sid))["pinned_question_id"] == second


async def test_hidden_question_event_carries_only_id_and_hidden(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    qid = (await ask(sockets[1], "Something rude"))["id"]
    await sockets[0].send({"type": "hide", "question_id": qid, "client_msg_id": "h"})
    for s in sockets:
        event = await s.next("question_updated", action="hide")
        assert event["question"] == {"id": qid, "hidden": True}
        assert "Something rude" not in orjson.dumps(event).decode()
    assert (await alice.get(f"/api/questions/{qid}")).status == 404
    await sockets[0].send({"type": "hide", "question_id": qid, "value": False})
    for s in sockets:
        event = await s.next("question_updated", action="hide")
        assert event["question"]["hidden"] is False and event["question"]["text"] == "Something rude"
    assert (await rest_question(alice, qid))["hidden"] is False


HOST_ONLY = ["answer", "pin", "hide", "delete_message", "grant_voice", "revoke_voice", "end"]


@pytest.mark.parametrize("command", HOST_ONLY)
async def test_guest_sending_a_host_command_is_not_host_and_changes_nothing(api, rooms, services, command):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    qid = (await ask(sockets[1]))["id"]
    await sockets[1].send({"type": "chat", "text": "hello", "client_msg_id": "c"})
    chat = await sockets[0].next("chat")
    if command == "revoke_voice":  # give Bob something to revoke
        await sockets[0].send({"type": "grant_voice", "user_id": bob.id})
        for s in sockets:
            await s.next("voice_granted")
    before = (await session_state(services, sid), await questions_state(services, sid))
    frame = {"type": command, "client_msg_id": "x"}
    frame.update({"delete_message": {"message_id": chat["id"]}, "grant_voice": {"user_id": bob.id},
                  "revoke_voice": {"user_id": bob.id}}.get(command, {}))
    if command in ("answer", "pin", "hide"):
        frame["question_id"] = qid
    await sockets[1].send(frame)
    await sockets[1].error("not_host", "x")
    await sockets[0].expect_none("question_updated", "message_deleted", "voice_granted", "voice_revoked",
                                 "session_ended")
    await sockets[2].expect_none("question_updated", "message_deleted", "voice_granted", "voice_revoked",
                                 "session_ended")
    assert (await session_state(services, sid), await questions_state(services, sid)) == before
    assert (await get_session(host, sid))["status"] == "live"
    newcomer = await rooms(await api.user(), sid)
    assert [e["text"] for e in newcomer.welcome["history"] if e["type"] == "chat"] == ["hello"]
    assert newcomer.welcome["speakers"] == ([bob.id] if command == "revoke_voice" else [])


# ---------------------------------------------------------------------------- hands


async def test_raise_and_lower_hand_are_told_to_everyone(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[1].send({"type": "raise_hand", "client_msg_id": "r"})
    for s in sockets:
        event = await s.next("hand_raised")
        assert event["user"]["id"] == alice.id and event["client_msg_id"] == "r"
    assert (await rooms(bob, sid)).welcome["hands"] == [alice.id]
    await sockets[1].send({"type": "lower_hand", "client_msg_id": "l"})
    for s in sockets:
        event = await s.next("hand_lowered")
        assert event["user"]["id"] == alice.id and event["client_msg_id"] == "l"
    assert (await rooms(bob, sid)).welcome["hands"] == []


async def test_raising_a_hand_twice_is_hand_already_raised(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[1].send({"type": "raise_hand"})
    await sockets[0].next("hand_raised")
    await sockets[1].send({"type": "raise_hand", "client_msg_id": "again"})
    await sockets[1].error("hand_already_raised", "again")
    await sockets[0].expect_none("hand_raised")


async def test_lowering_a_hand_never_raised_is_hand_not_raised(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[1].send({"type": "lower_hand", "client_msg_id": "low"})
    await sockets[1].error("hand_not_raised", "low")
    await sockets[0].expect_none("hand_lowered")


async def test_the_host_raising_a_hand_is_is_host(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "raise_hand", "client_msg_id": "h"})
    await sockets[0].error("is_host", "h")
    await sockets[1].expect_none("hand_raised")
    assert (await rooms(alice, sid)).welcome["hands"] == []


# ---------------------------------------------------------------------------- voice grants


async def test_grant_voice_tells_everyone_the_user_is_a_speaker(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id, "client_msg_id": "g"})
    for s in sockets:
        event = await s.next("voice_granted")
        assert event["user"]["id"] == alice.id and event["role"] == "speaker"
        assert event["by"]["id"] == host.id and event["client_msg_id"] == "g"
    assert (await rooms(bob, sid)).welcome["speakers"] == [alice.id]


async def test_grant_voice_lowers_the_grantees_raised_hand(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[1].send({"type": "raise_hand"})
    await sockets[0].next("hand_raised")
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    for s in sockets:
        lowered = await s.next("hand_lowered")
        assert lowered["user"]["id"] == alice.id
        await s.next("voice_granted")
    assert (await rooms(bob, sid)).welcome["hands"] == []
    # And the speaker cannot raise a hand any more.
    await sockets[1].send({"type": "raise_hand", "client_msg_id": "r"})
    await sockets[1].error("already_speaker", "r")


async def test_a_reconnecting_grantee_is_welcomed_as_speaker(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    await sockets[1].next("voice_granted")
    sockets[1].close()
    again = await rooms(alice, sid)
    assert again.welcome["you"]["role"] == "speaker"
    assert again.welcome["speakers"] == [alice.id]
    roles = {p["user"]["id"]: p["role"] for p in again.welcome["stage"]}
    assert roles[alice.id] == "speaker" and roles[host.id] == "host"


async def test_revoke_voice_is_told_to_everyone_and_the_role_goes_back_to_listener(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    await sockets[2].next("voice_granted")
    await sockets[0].send({"type": "revoke_voice", "user_id": alice.id, "client_msg_id": "rv"})
    for s in sockets:
        event = await s.next("voice_revoked")
        assert event["user"]["id"] == alice.id and event["role"] == "listener"
        assert event["by"]["id"] == host.id and event["client_msg_id"] == "rv"
    again = await rooms(alice, sid)
    assert again.welcome["you"]["role"] == "listener" and again.welcome["speakers"] == []
    # A listener again: the hand can go up again.
    await sockets[1].send({"type": "raise_hand"})
    await sockets[0].next("hand_raised")


async def test_granting_voice_twice_is_already_speaker(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    await sockets[1].next("voice_granted")
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id, "client_msg_id": "g2"})
    await sockets[0].error("already_speaker", "g2")
    await sockets[1].expect_none("voice_granted")


async def test_revoking_voice_is_idempotent(api, rooms):
    """A revoke for someone in the room who has no voice is told to the room all the same
    (their connections end up listeners whatever the speakers set said, e.g. after Redis
    lost it), not refused."""
    sid, (host, alice), sockets = await live_session(api, rooms)
    for n in range(2):
        await sockets[0].send({"type": "revoke_voice", "user_id": alice.id, "client_msg_id": f"r{n}"})
        for s in sockets:
            event = await s.next("voice_revoked", client_msg_id=f"r{n}")
            assert event["user"]["id"] == alice.id and event["role"] == "listener"
    assert (await rooms(alice, sid)).welcome["speakers"] == []


@pytest.mark.parametrize("command", ["grant_voice", "revoke_voice"])
async def test_voice_for_someone_not_in_the_room_does_not_tell_whether_they_exist(api, rooms, command):
    """Any signed-in user can host a session of their own: grants to ids 1, 2, 3... must not
    read back the service's users."""
    sid, (host, alice), sockets = await live_session(api, rooms)
    absent = await api.user(display_name="밖에 있는 사람")  # a real user, never in this room
    answers = []
    for user_id in (absent.id, 987654321):
        await sockets[0].send({"type": command, "user_id": user_id, "client_msg_id": "u"})
        error = await sockets[0].error("user_not_in_room", "u")
        answers.append(error["message"].replace(str(user_id), "<id>"))
        assert "밖에" not in error["message"] and absent.user["username"] not in error["message"]
    assert answers[0] == answers[1]
    await sockets[1].expect_none("voice_granted", "voice_revoked")


async def test_a_raised_hand_is_enough_to_be_granted_voice_after_leaving(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[1].send({"type": "raise_hand"})
    await sockets[0].next("hand_raised")
    sockets[1].close()
    await sockets[0].next("leave")
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id, "client_msg_id": "g"})
    granted = await sockets[0].next("voice_granted", client_msg_id="g")
    assert granted["user"]["id"] == alice.id


async def test_granting_voice_to_the_host_is_is_host(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "grant_voice", "user_id": host.id, "client_msg_id": "self"})
    await sockets[0].error("is_host", "self")
    await sockets[1].expect_none("voice_granted")
    assert (await rooms(alice, sid)).welcome["speakers"] == []


# ---------------------------------------------------------------------------- voice not configured


async def test_voice_token_without_agora_is_503_voice_not_configured(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    assert sockets[0].welcome["voice"] == {"configured": False}
    for account in (host, alice):
        r = await account.post(f"/api/sessions/{sid}/voice/token")
        assert r.status == 503 and r.error_code == "voice_not_configured", r
    await sockets[1].send({"type": "voice_token", "client_msg_id": "vt"})
    await sockets[1].error("voice_not_configured", "vt")


async def test_hands_and_grants_work_without_agora_and_send_no_voice_token(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[1].send({"type": "raise_hand"})
    await sockets[0].next("hand_raised")
    await sockets[0].send({"type": "grant_voice", "user_id": alice.id})
    for s in sockets:
        await s.next("hand_lowered")
        await s.next("voice_granted")
    await sockets[0].send({"type": "revoke_voice", "user_id": alice.id})
    for s in sockets:
        await s.next("voice_revoked")
    await sockets[1].expect_none("voice_token", "error")
    assert not [f for s in sockets for f in s.frames if f["type"] in ("voice_token", "error")]


# ---------------------------------------------------------------------------- delete_message


async def test_delete_message_is_told_to_everyone(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[1].send({"type": "chat", "text": "spam spam spam", "client_msg_id": "c"})
    chat = await sockets[0].next("chat", client_msg_id="c")
    await sockets[0].send({"type": "delete_message", "message_id": chat["id"], "client_msg_id": "d"})
    for s in sockets:
        event = await s.next("message_deleted")
        assert event["message_id"] == chat["id"] and event["client_msg_id"] == "d"
        assert event["user"]["id"] == host.id


async def test_a_newcomers_history_leaves_out_the_deleted_chat(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[1].send({"type": "chat", "text": "keep me", "client_msg_id": "k"})
    await sockets[1].send({"type": "chat", "text": "delete me", "client_msg_id": "x"})
    await sockets[0].next("chat", client_msg_id="k")
    doomed = await sockets[0].next("chat", client_msg_id="x")
    await sockets[0].send({"type": "delete_message", "message_id": doomed["id"]})
    await sockets[1].next("message_deleted")
    newcomer = await rooms(await api.user(), sid)
    history = newcomer.welcome["history"]
    texts = [e["text"] for e in history if e["type"] == "chat"]
    assert texts == ["keep me"]
    assert "delete me" not in orjson.dumps(newcomer.welcome).decode()


# ---------------------------------------------------------------------------- end


async def test_end_over_the_socket_is_told_to_everyone(api, rooms):
    sid, (host, alice, bob), sockets = await live_session(api, rooms, guests=2)
    await sockets[0].send({"type": "end", "client_msg_id": "bye"})
    for s in sockets:
        event = await s.next("session_ended")
        assert event["session"]["id"] == sid and event["session"]["status"] == "ended"


async def test_chat_after_the_end_is_not_live(api, rooms):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "end"})
    await sockets[1].next("session_ended")
    await sockets[1].send({"type": "chat", "text": "anyone?", "client_msg_id": "late"})
    await sockets[1].error("not_live", "late")
    await sockets[0].expect_none("chat")


async def test_the_session_shows_ended_after_the_end(api, rooms, services):
    sid, (host, alice), sockets = await live_session(api, rooms)
    await sockets[0].send({"type": "end"})
    await sockets[0].next("session_ended")
    session = await get_session(alice, sid)
    assert session["status"] == "ended" and session["ended_at"]
    assert (await session_state(services, sid))[0]["status"] == "ended"
    # Ending again is refused as a normal error frame.
    await sockets[0].send({"type": "end", "client_msg_id": "again"})
    await sockets[0].error("not_live", "again")
