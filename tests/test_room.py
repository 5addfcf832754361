"""The live room over real WebSockets, on both set-ups (SQLite + in-process log; MariaDB + Redis)."""

import asyncio

import orjson
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClosedError, websocket_connect

from conftest import db_rows
from roomclient import RoomClient

pytestmark = pytest.mark.gen_test


@pytest.fixture
def room(api, base_url):
    """Returns an async factory: (host, guest, live session id)."""

    async def make(live: bool = True):
        host = await api.user(display_name="호스트")
        guest = await api.user(display_name="게스트")
        session = await host.session(title="라이브 Q&A")
        if live:
            r = await host.post(f"/api/sessions/{session['id']}/start")
            assert r.status == 200, r
        return host, guest, session["id"]

    return make


async def refused(base_url, path, headers=None, token=None):
    url = base_url.replace("http://", "ws://") + path
    headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(url, headers=headers))
    response = info.value.response
    return info.value.code, orjson.loads(response.body) if response is not None and response.body else None


async def written_behind(services):
    """Wait until the write-behind has put every event appended here in the cold store. (A
    flush_once() of the test's own may find nothing: the write-behind's loop can have taken
    the batch and be inserting it.)"""
    for _ in range(100):
        if await services.rooms.room_log.backlog() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the write-behind did not catch up in 5 s")


# ---------------------------------------------------------------- the upgrade


async def test_upgrade_without_token_is_401_before_upgrading(room, base_url):
    _, _, sid = await room()
    code, body = await refused(base_url, f"/ws/sessions/{sid}")
    assert code == 401 and body["error"]["code"] == "not_signed_in"


async def test_upgrade_with_revoked_token_is_401(room, base_url):
    _, guest, sid = await room()
    await guest.post("/api/logout")
    code, _ = await refused(base_url, f"/ws/sessions/{sid}", token=guest.token)
    assert code == 401


async def test_upgrade_to_unknown_session_is_404(room, base_url):
    _, guest, sid = await room()
    code, body = await refused(base_url, f"/ws/sessions/{sid + 999}", token=guest.token)
    assert code == 404 and body["error"]["code"] == "session_not_found"


async def test_upgrade_with_bad_since_is_400(room, base_url):
    _, guest, sid = await room()
    code, body = await refused(base_url, f"/ws/sessions/{sid}?since=yesterday", token=guest.token)
    assert code == 400 and body["error"]["code"] == "invalid_since"


async def test_foreign_origin_is_403(room, base_url):
    _, guest, sid = await room()
    code, body = await refused(base_url, f"/ws/sessions/{sid}", {"Origin": "https://evil.example"}, token=guest.token)
    assert code == 403 and body["error"]["code"] == "origin_not_allowed"


async def test_own_origin_is_allowed(room, base_url):
    _, guest, sid = await room()
    host_header = base_url.split("://")[1]
    client = await RoomClient.connect(base_url, sid, guest.token, headers={"Origin": f"http://{host_header}"})
    assert client.welcome["you"]["user"]["id"] == guest.id


async def test_login_cookie_authenticates_the_upgrade(room, base_url):
    _, guest, sid = await room()
    client = await RoomClient.connect(base_url, sid, None, headers={"Cookie": f"ask2live_token={guest.token}"})
    assert client.welcome["you"]["user"]["id"] == guest.id


# ---------------------------------------------------------------- welcome and broadcast


async def test_welcome_says_who_you_are_your_role_and_who_is_here(room, base_url):
    host, guest, sid = await room()
    await guest.question(sid, "준비된 질문")
    h = await RoomClient.connect(base_url, sid, host.token)
    g = await RoomClient.connect(base_url, sid, guest.token)
    assert h.welcome["you"]["role"] == "host" and g.welcome["you"]["role"] == "listener"
    assert g.welcome["session"]["id"] == sid and g.welcome["session"]["status"] == "live"
    # The host is on the stage; everyone is in the audience's count and its first page.
    assert [p["user"]["id"] for p in g.welcome["stage"]] == [host.id]
    assert g.welcome["audience"]["count"] == 2 and g.welcome["audience"]["next"] is None
    assert [(p["user"]["id"], p["role"]) for p in g.welcome["audience"]["people"]] == [(host.id, "host"),
                                                                                        (guest.id, "listener")]
    assert [q["text"] for q in g.welcome["questions"]] == ["준비된 질문"]
    assert g.welcome["resumed"] is False and g.welcome["recovered"] is False
    assert g.welcome["position"] == g.welcome["history"][-1]["id"]
    # A listener's arrival is told in the next audience event, with the count.
    audience = await h.next("audience", timeout=5)
    if audience["count"] == 1:  # the host's own arrival, told before the guest's
        audience = await h.next("audience", timeout=5)
    assert audience["count"] == 2 and audience["named"] is True
    assert [(p["user"]["id"], p["conn"]) for p in audience["joined"]] == [(guest.id, g.welcome["you"]["conn"])]


async def test_chat_reaches_every_member_with_the_senders_client_msg_id(room, base_url):
    host, guest, sid = await room()
    h = await RoomClient.connect(base_url, sid, host.token)
    g = await RoomClient.connect(base_url, sid, guest.token)
    other = await RoomClient.connect(base_url, sid, guest.token)  # a second tab
    echo = await g.chat("안녕하세요 👋 반가워요", "m-1")
    at_host = await h.next("chat")
    at_other = await other.next("chat")
    assert echo == at_host == at_other
    assert echo["text"] == "안녕하세요 👋 반가워요" and echo["client_msg_id"] == "m-1"
    assert echo["user"]["id"] == guest.id and echo["role"] == "listener"
    assert isinstance(echo["ts"], int) and "-" in echo["id"]


async def test_the_server_not_the_client_says_who_sent_a_message(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    await g.send({"type": "chat", "text": "hi", "client_msg_id": "x", "user": {"id": host.id}, "role": "host"})
    echo = await g.next("chat", client_msg_id="x")
    assert echo["user"]["id"] == guest.id and echo["role"] == "listener"


async def test_chat_in_a_session_that_is_not_live_is_refused_but_the_socket_stays(room, base_url):
    host, guest, sid = await room(live=False)
    g = await RoomClient.connect(base_url, sid, guest.token)
    assert g.welcome["session"]["status"] == "scheduled"
    await g.send({"type": "chat", "text": "too early", "client_msg_id": "early"})
    error = await g.next("error")
    assert error["code"] == "not_live" and error["client_msg_id"] == "early"
    await g.send({"type": "raise_hand", "client_msg_id": "h"})
    assert (await g.next("hand_raised"))["client_msg_id"] == "h"


async def test_going_live_is_announced_and_opens_chat(room, base_url):
    host, guest, sid = await room(live=False)
    g = await RoomClient.connect(base_url, sid, guest.token)
    await host.post(f"/api/sessions/{sid}/start")
    started = await g.next("session_started")
    assert started["session"]["status"] == "live"
    assert (await g.chat("now", "n"))["text"] == "now"


async def test_history_on_join_holds_the_recent_events_in_order(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    sent = [await g.chat(f"line {i}", f"c{i}") for i in range(5)]
    h = await RoomClient.connect(base_url, sid, host.token)
    chats = [e for e in h.welcome["history"] if e["type"] == "chat"]
    assert chats == sent
    ids = [e["id"] for e in h.welcome["history"]]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))


# ---------------------------------------------------------------- resume


async def test_resume_since_an_id_gets_exactly_what_was_missed(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    h = await RoomClient.connect(base_url, sid, host.token)
    last = (await g.chat("before", "b"))["id"]
    g.close()
    missed = [await h.chat(f"while away {i}", f"w{i}") for i in range(4)]
    back = await RoomClient.connect(base_url, sid, guest.token, since=last)
    assert back.welcome["resumed"] is True and back.welcome["recovered"] is True
    replay = back.welcome["history"]
    assert [e for e in replay if e["type"] == "chat"] == missed
    assert all(tuple(map(int, e["id"].split("-"))) > tuple(map(int, last.split("-"))) for e in replay)
    # Live events continue after the replay, nothing twice.
    after = await h.chat("after", "a")
    assert await back.next("chat") == after
    ids = [e["id"] for e in replay] + [e["id"] for e in back.events]
    assert len(ids) == len(set(ids))


async def test_resume_from_a_position_never_handed_out_is_not_recovered(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    await g.chat("x", "x")
    back = await RoomClient.connect(base_url, sid, guest.token, since="99999999999999-0")
    assert back.welcome["resumed"] is True and back.welcome["recovered"] is False
    assert [e["text"] for e in back.welcome["history"] if e["type"] == "chat"] == ["x"]


# ---------------------------------------------------------------- bad input and abuse


@pytest.mark.parametrize("frame,code", [
    (b"{not json", "invalid_json"),
    (b"[1,2]", "invalid_frame"),
    (orjson.dumps({"type": "shout", "client_msg_id": "u"}), "unknown_type"),
    (orjson.dumps({"type": "chat", "text": "", "client_msg_id": "u"}), "empty_field"),
    (orjson.dumps({"type": "chat", "text": 5, "client_msg_id": "u"}), "invalid_field"),
    (orjson.dumps({"type": "chat", "text": "가" * 1001, "client_msg_id": "u"}), "too_long"),
    (orjson.dumps({"type": "vote", "question_id": "one", "client_msg_id": "u"}), "invalid_field"),
    (orjson.dumps({"type": "chat", "text": "x", "client_msg_id": "y" * 65}), "invalid_field"),
])
async def test_bad_frames_get_an_error_frame_and_change_nothing(room, base_url, services, frame, code):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    await g.send(frame)
    error = await g.next("error")
    assert error["code"] == code and error["message"]
    if b'"client_msg_id":"u"' in frame:
        assert error["client_msg_id"] == "u"
    await g.expect_none("chat")
    # The connection is still open and usable.
    assert (await g.chat("still here", "ok"))["text"] == "still here"
    await written_behind(services)
    rows = await db_rows(services, "SELECT body FROM room_events WHERE session_id = ? AND type = 'chat'", sid)
    assert [orjson.loads(r["body"])["text"] for r in rows] == ["still here"]


async def test_a_frame_over_the_size_cap_closes_the_connection(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    await g.send({"type": "chat", "text": "x" * 100_000})
    assert await g.frame() is None
    assert g.conn.close_code == 1009


async def test_rate_limit_refuses_then_closes_a_client_that_keeps_going(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    for i in range(60):
        try:
            await g.send({"type": "chat", "text": f"spam {i}", "client_msg_id": f"s{i}"})
        except WebSocketClosedError:
            break
    codes = []
    while True:
        frame = await g.frame()
        if frame is None:
            break
        if frame["type"] == "error":
            codes.append(frame["code"])
    assert "rate_limited" in codes
    assert g.conn.close_code == 4029


async def test_a_guest_sending_a_host_command_is_refused(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    await g.send({"type": "end", "client_msg_id": "e"})
    error = await g.next("error")
    assert error["code"] == "not_host" and error["client_msg_id"] == "e"
    assert (await guest.get(f"/api/sessions/{sid}")).json["session"]["status"] == "live"


# ---------------------------------------------------------------- the cold store


async def test_every_event_is_written_behind_exactly_once(room, base_url, services):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    sent = [await g.chat(f"기록 {i}", f"r{i}") for i in range(8)]
    for _ in range(100):
        if await services.rooms.room_log.backlog() == 0:
            break
        await asyncio.sleep(0.05)
    rows = await db_rows(services, "SELECT id_ms, id_seq, body FROM room_events WHERE session_id = ? AND type = 'chat'"
                                   " ORDER BY id_ms, id_seq", sid)
    assert [f"{r['id_ms']}-{r['id_seq']}" for r in rows] == [e["id"] for e in sent]
    assert [orjson.loads(r["body"])["text"] for r in rows] == [f"기록 {i}" for i in range(8)]


async def test_write_statements_per_chat_message_are_far_below_one(room, api, base_url, services):
    """The budget, not a speed: 100 chat messages from 10 clients cost a handful of INSERTs."""
    host, guest, sid = await room()
    # Ten people (one user's frames over all their sockets are limited: 20 at once).
    clients = [await RoomClient.connect(base_url, sid, (await api.user()).token) for _ in range(10)]
    await services.write_behind.flush_once()
    calls = []
    services.store.observe_interactions(lambda name, seconds: calls.append(name))
    messages = 100
    await asyncio.gather(*[
        asyncio.gather(*[c.send({"type": "chat", "text": f"m{i}", "client_msg_id": f"{n}-{i}"}) for i in range(10)])
        for n, c in enumerate(clients)
    ])
    for c in clients:
        for _ in range(messages):
            frame = await c.frame()
            if frame["type"] == "chat" and frame["client_msg_id"].endswith("-9") and frame["client_msg_id"].startswith("9-"):
                break
    for _ in range(100):
        if await services.rooms.room_log.backlog() == 0:
            break
        await asyncio.sleep(0.05)
    writes = [c for c in calls if c == "insert_events"]
    print(f"\n{len(writes)} write statements for {messages} chat messages: {len(writes) / messages:.3f} per message")
    assert set(calls) - {"ping"} <= {"insert_events"}, calls  # no other query on the chat path (ping: the health gauge)
    assert 1 <= len(writes) <= messages / 10
    assert (await db_rows(services, "SELECT COUNT(*) AS n FROM room_events WHERE session_id = ? AND type = 'chat'",
                          sid))[0]["n"] == messages


async def test_question_changes_made_through_rest_reach_the_live_room(room, base_url):
    host, guest, sid = await room()
    h = await RoomClient.connect(base_url, sid, host.token)
    question = await guest.question(sid, "REST에서 온 질문")
    asked = await h.next("question")
    assert asked["question"]["id"] == question["id"] and asked["question"]["text"] == "REST에서 온 질문"
    await host.post(f"/api/questions/{question['id']}/vote")
    voted = await h.next("question_updated", action="vote")
    assert voted["question"]["votes"] == 1 and "value" not in voted
    await host.post(f"/api/questions/{question['id']}/pin")
    pinned = await h.next("question_updated", action="pin")
    assert pinned["pinned_question_id"] == question["id"] and pinned["role"] == "host"
    await guest.call("PATCH", f"/api/questions/{question['id']}", {"text": "고친 질문"})
    edited = await h.next("question_updated", action="edit")
    assert edited["question"]["text"] == "고친 질문"
    await guest.call("DELETE", f"/api/questions/{question['id']}")
    deleted = await h.next("question_updated", action="delete")
    assert deleted["question"] == {"id": question["id"], "deleted": True} and deleted["pinned_question_id"] is None


async def test_garbage_frames_count_against_the_rate_limit(room, base_url):
    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    for _ in range(20):
        await g.send(b"{not json")
    codes = [(await g.next("error"))["code"] for _ in range(20)]
    assert "rate_limited" in codes


async def test_a_long_korean_chat_with_escaped_json_fits_the_frame_cap(room, base_url):
    import json

    host, guest, sid = await room()
    g = await RoomClient.connect(base_url, sid, guest.token)
    await g.send(json.dumps({"type": "chat", "text": "가" * 1000, "client_msg_id": "long"}))  # \uac00 escapes
    assert (await g.next("chat", client_msg_id="long"))["text"] == "가" * 1000
