"""Sessions and seat reservations over REST, on both set-ups, through HTTP."""

import asyncio
import base64
from datetime import datetime, timedelta, timezone

import pytest

from conftest import db_rows

pytestmark = pytest.mark.gen_test

FUTURE = "2099-01-01T10:00:00+09:00"
FUTURE_UTC = "2099-01-01T01:00:00.000Z"


def soon(**delta) -> str:
    """An ISO 8601 time (with zone) relative to now."""
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


def cursor_for(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


async def row(services, session_id):
    rows = await db_rows(services, "SELECT * FROM sessions WHERE id = ?", session_id)
    return rows[0] if rows else None


async def count(services, table):
    return len(await db_rows(services, f"SELECT * FROM {table}"))


async def reservation_rows(services, session_id):
    return await db_rows(services, "SELECT user_id FROM reservations WHERE session_id = ? ORDER BY user_id",
                         session_id)


async def ids(account, query=""):
    r = await account.get(f"/api/sessions{query}")
    assert r.status == 200, r
    return [s["id"] for s in r.json["items"]]


# ---------------------------------------------------------------------------- create


async def test_create_returns_201_and_the_full_session(api, services):
    host = await api.user("host", "The Host")
    r = await host.post("/api/sessions", {
        "title": "  Rust in production  ", "description": "Bring questions.", "starts_at": FUTURE,
        "tags": ["rust", "backend"], "reservation_target": 50,
    })
    assert r.status == 201, r
    s = r.json["session"]
    assert s["title"] == "Rust in production"  # trimmed
    assert s["description"] == "Bring questions."
    assert s["tags"] == ["rust", "backend"]
    assert s["status"] == "scheduled"
    assert s["host"] == {"id": host.id, "username": "host", "display_name": "The Host"}
    assert s["starts_at"] == FUTURE_UTC  # normalised to UTC
    assert s["started_at"] is None and s["ended_at"] is None
    assert s["created_at"].endswith("Z")
    assert s["reservations"] == 0 and s["reservation_target"] == 50 and s["target_reached"] is False
    assert s["confirmed"] is False and s["confirmed_at"] is None
    assert s["reserved"] is False and s["pinned_question_id"] is None
    assert s["counts"] == {"questions": 0, "votes": 0}
    # What GET answers is what POST answered.
    got = await host.get(f"/api/sessions/{s['id']}")
    assert got.status == 200 and got.json["session"] == s
    db = await row(services, s["id"])
    assert db["host_id"] == host.id and db["status"] == "scheduled" and db["title"] == "Rust in production"


async def test_create_with_only_the_required_fields_uses_defaults(api):
    host = await api.user()
    r = await host.post("/api/sessions", {"title": "Minimal", "starts_at": FUTURE})
    assert r.status == 201, r
    s = r.json["session"]
    assert (s["description"], s["tags"], s["reservation_target"], s["target_reached"]) == ("", [], None, False)


async def test_tags_are_trimmed_and_deduplicated(api):
    host = await api.user()
    s = await host.session(tags=[" go ", "go", "db", "go"])
    assert s["tags"] == ["go", "db"]


async def test_unicode_round_trips_in_title_description_and_tags(api, services):
    host = await api.user()
    title = "한국어 라이브 Q&A 🎤🔥 세션"
    description = "여러 줄의\n설명입니다 ✨\n👩‍💻 emoji with ZWJ, 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
    tags = ["개발", "🚀", "데이터베이스"]
    s = await host.session(title=title, description=description, tags=tags)
    assert (s["title"], s["description"], s["tags"]) == (title, description, tags)
    got = (await host.get(f"/api/sessions/{s['id']}")).json["session"]
    assert (got["title"], got["description"], got["tags"]) == (title, description, tags)
    db = await row(services, s["id"])
    assert db["title"] == title and db["description"] == description
    listed = (await host.get("/api/sessions")).json["items"]
    assert [(x["title"], x["tags"]) for x in listed] == [(title, tags)]


async def test_title_length_counts_characters_not_bytes(api, services):
    host = await api.user()
    longest = "🎤" * 199 + "가"  # 200 characters, 800 bytes of UTF-8
    s = await host.session(title=longest)
    assert s["title"] == longest
    assert (await row(services, s["id"]))["title"] == longest
    r = await host.post("/api/sessions", {"title": longest + "x", "starts_at": FUTURE})
    assert r.status == 422 and r.error_code == "too_long"
    assert await count(services, "sessions") == 1


async def test_a_start_time_a_few_minutes_ago_is_accepted(api):
    host = await api.user()
    s = await host.session(starts_at=soon(minutes=-3))
    assert s["status"] == "scheduled"
    r = await host.post("/api/sessions", {"title": "t", "starts_at": soon(minutes=-30)})
    assert r.status == 422 and r.error_code == "starts_at_in_past"


async def test_the_latest_storable_start_time_and_the_longest_tags_fit(api, services):
    host = await api.user()
    s = await host.session(starts_at="9999-12-31T23:59:59Z")
    assert s["starts_at"] == "9999-12-31T23:59:59.000Z"
    # The characters JSON escapes in two (quote, backslash), at the maximum sizes.
    tags = [("\"" if i % 2 else "\\") * 31 + str(i) for i in range(10)]
    s = await host.session(tags=tags, title="🎤" * 200, description="가" * 5000)
    assert s["tags"] == tags
    got = (await host.get(f"/api/sessions/{s['id']}")).json["session"]
    assert (got["tags"], got["title"], got["description"]) == (tags, "🎤" * 200, "가" * 5000)


@pytest.mark.parametrize("body,status,code", [
    ({"starts_at": FUTURE}, 400, "missing_field"),
    ({"title": "No time"}, 400, "missing_field"),
    ({"title": 7, "starts_at": FUTURE}, 400, "invalid_field"),
    ({"title": None, "starts_at": FUTURE}, 400, "invalid_field"),
    ({"title": "", "starts_at": FUTURE}, 422, "empty_field"),
    ({"title": "   \t ", "starts_at": FUTURE}, 422, "empty_field"),
    ({"title": "x" * 201, "starts_at": FUTURE}, 422, "too_long"),
    ({"title": "nul\x00byte", "starts_at": FUTURE}, 422, "invalid_characters"),
    ({"title": "t", "description": "d" * 5001, "starts_at": FUTURE}, 422, "too_long"),
    ({"title": "t", "description": ["d"], "starts_at": FUTURE}, 400, "invalid_field"),
    ({"title": "t", "starts_at": "2099-01-01T10:00:00"}, 422, "invalid_time"),  # naive: no zone
    ({"title": "t", "starts_at": "2099-01-01"}, 422, "invalid_time"),
    ({"title": "t", "starts_at": "next tuesday"}, 422, "invalid_time"),
    ({"title": "t", "starts_at": "0001-01-01T00:00:00+09:00"}, 422, "invalid_time"),  # before year 1 in UTC
    ({"title": "t", "starts_at": "9999-12-31T23:59:59-09:00"}, 422, "invalid_time"),  # after year 9999 in UTC
    ({"title": "t", "starts_at": 4102444800}, 400, "invalid_field"),
    ({"title": "t", "starts_at": None}, 400, "invalid_field"),
    ({"title": "t", "starts_at": "2020-01-01T00:00:00Z"}, 422, "starts_at_in_past"),
    ({"title": "t", "starts_at": FUTURE, "tags": "rust"}, 400, "invalid_field"),
    ({"title": "t", "starts_at": FUTURE, "tags": ["ok", 3]}, 400, "invalid_field"),
    ({"title": "t", "starts_at": FUTURE, "tags": [f"t{i}" for i in range(11)]}, 422, "too_many"),
    ({"title": "t", "starts_at": FUTURE, "tags": ["ok", "  "]}, 422, "invalid_item"),
    ({"title": "t", "starts_at": FUTURE, "tags": ["x" * 33]}, 422, "invalid_item"),
    ({"title": "t", "starts_at": FUTURE, "tags": ["a\x00b"]}, 422, "invalid_characters"),
    # Ten tags of 32 control characters each: JSON spells each as "\u0001", which must
    # not overflow the stored tag list (a 500 on MySQL only, before the fix).
    ({"title": "t", "starts_at": FUTURE, "tags": [chr(0x0e + i) * 32 for i in range(10)]}, 422, "invalid_characters"),
    ({"title": "t", "starts_at": FUTURE, "tags": ["line\nbreak"]}, 422, "invalid_characters"),
    ({"title": "t", "starts_at": FUTURE, "reservation_target": 0}, 422, "out_of_range"),
    ({"title": "t", "starts_at": FUTURE, "reservation_target": 1_000_001}, 422, "out_of_range"),
    ({"title": "t", "starts_at": FUTURE, "reservation_target": "10"}, 400, "invalid_field"),
    ({"title": "t", "starts_at": FUTURE, "reservation_target": True}, 400, "invalid_field"),
    ({"title": "t", "starts_at": FUTURE, "reservation_target": 2.5}, 400, "invalid_field"),
    (["title", "starts_at"], 400, "invalid_body"),
    ("a string", 400, "invalid_body"),
])
async def test_bad_create_is_refused_and_creates_nothing(api, services, body, status, code):
    host = await api.user()
    r = await host.post("/api/sessions", body)
    assert (r.status, r.error_code) == (status, code), r
    assert set(r.json["error"]) == {"code", "message"}
    assert await count(services, "sessions") == 0


async def test_create_with_malformed_or_empty_body_is_400(api, services):
    host = await api.user()
    r = await host.call("POST", "/api/sessions", raw=b'{"title": "x", ')
    assert r.status == 400 and r.error_code == "invalid_json"
    r = await host.call("POST", "/api/sessions", raw=b"")
    assert r.status == 400 and r.error_code == "missing_field"
    assert await count(services, "sessions") == 0


async def test_create_without_a_token_is_401(api, services):
    r = await api.call("POST", "/api/sessions", {"title": "t", "starts_at": FUTURE})
    assert r.status == 401 and r.error_code == "not_signed_in"
    r = await api.call("POST", "/api/sessions", {"title": "t", "starts_at": FUTURE}, token="forged")
    assert r.status == 401
    # The token is checked before the body.
    r = await api.call("POST", "/api/sessions", raw=b"{broken")
    assert r.status == 401 and r.error_code == "not_signed_in"
    assert await count(services, "sessions") == 0


# ---------------------------------------------------------------------------- detail


async def test_get_unknown_or_huge_id_is_404(api):
    alice = await api.user()
    r = await alice.get("/api/sessions/424242")
    assert r.status == 404 and r.error_code == "session_not_found"
    r = await alice.get("/api/sessions/9999999999999999999")
    assert r.status == 404 and r.error_code == "not_found"
    r = await alice.get("/api/sessions/abc")
    assert r.status == 404 and r.error_code == "no_such_route"


async def test_get_without_a_token_is_401(api):
    host = await api.user()
    s = await host.session()
    r = await api.call("GET", f"/api/sessions/{s['id']}")
    assert r.status == 401


async def test_detail_counts_reflect_questions_and_votes(api):
    host, ann, bob, cho = await api.user(), await api.user(), await api.user(), await api.user()
    s = await host.session()
    q1 = await ann.question(s["id"], "첫 번째 질문?")
    q2 = await bob.question(s["id"], "Second?")
    q3 = await cho.question(s["id"], "Third?", anonymous=True)
    for voter, q in [(bob, q1), (cho, q1), (ann, q2), (host, q1)]:
        r = await voter.post(f"/api/questions/{q['id']}/vote")
        assert r.status == 200, r
    detail = (await ann.get(f"/api/sessions/{s['id']}")).json["session"]
    assert detail["counts"] == {"questions": 3, "votes": 4}
    listed = (await ann.get("/api/sessions")).json["items"][0]
    assert listed["counts"] == {"questions": 3, "votes": 4}
    # Taking a vote back and hiding a question both show in the counts.
    assert (await cho.call("DELETE", f"/api/questions/{q1['id']}/vote")).status == 200
    assert (await host.post(f"/api/questions/{q2['id']}/hide")).status == 200
    detail = (await ann.get(f"/api/sessions/{s['id']}")).json["session"]
    assert detail["counts"] == {"questions": 2, "votes": 2}
    assert q3["anonymous"] is True


# ---------------------------------------------------------------------------- list


async def _start(host, s):
    r = await host.post(f"/api/sessions/{s['id']}/start")
    assert r.status == 200, r


async def _end(host, s):
    r = await host.post(f"/api/sessions/{s['id']}/end")
    assert r.status == 200, r


async def test_list_orders_each_status_and_excludes_cancelled_by_default(api, services):
    host = await api.user()
    march = await host.session(title="march", starts_at="2099-03-01T00:00:00Z")
    january = await host.session(title="january", starts_at="2099-01-01T00:00:00Z")
    february = await host.session(title="february", starts_at="2099-02-01T09:00:00+09:00")
    live_old = await host.session(title="live old")
    live_new = await host.session(title="live new")
    ended_old = await host.session(title="ended old")
    ended_new = await host.session(title="ended new")
    cancelled = await host.session(title="cancelled", starts_at="2098-01-01T00:00:00Z")
    # Start and end them in an order different from both ids and the wanted order,
    # then pin the stamps so equal milliseconds cannot decide the test.
    for s in (live_new, live_old, ended_new, ended_old):
        await _start(host, s)
    for s in (ended_new, ended_old):
        await _end(host, s)
    await db_rows(services, "UPDATE sessions SET started_at = ? WHERE id = ?", "2030-01-01 00:00:00.000", live_old["id"])
    await db_rows(services, "UPDATE sessions SET started_at = ? WHERE id = ?", "2030-01-02 00:00:00.000", live_new["id"])
    await db_rows(services, "UPDATE sessions SET ended_at = ? WHERE id = ?", "2030-01-01 00:00:00.000", ended_old["id"])
    await db_rows(services, "UPDATE sessions SET ended_at = ? WHERE id = ?", "2030-01-02 00:00:00.000", ended_new["id"])
    assert (await host.call("DELETE", f"/api/sessions/{cancelled['id']}")).status == 200

    assert await ids(host, "?status=scheduled") == [january["id"], february["id"], march["id"]]
    assert await ids(host, "?status=live") == [live_new["id"], live_old["id"]]
    assert await ids(host, "?status=ended") == [ended_new["id"], ended_old["id"]]
    assert await ids(host, "?status=cancelled") == [cancelled["id"]]
    assert await ids(host) == [live_new["id"], live_old["id"], january["id"], february["id"], march["id"],
                               ended_new["id"], ended_old["id"]]
    assert await ids(host, "?status=") == await ids(host)
    r = await host.get("/api/sessions?status=scheduled")
    assert all(s["status"] == "scheduled" for s in r.json["items"]) and r.json["next_cursor"] is None


@pytest.mark.parametrize("status", ["LIVE", "open", "cancel", "scheduled,live"])
async def test_list_with_an_unknown_status_is_422(api, status):
    alice = await api.user()
    await alice.session()
    r = await alice.get(f"/api/sessions?status={status}")
    assert r.status == 422 and r.error_code == "invalid_status"


async def test_list_without_a_token_is_401(api):
    r = await api.call("GET", "/api/sessions")
    assert r.status == 401


async def test_list_filters_by_host(api):
    alice, bob, carol = await api.user(), await api.user(), await api.user()
    a1 = await alice.session(title="a1", starts_at="2099-01-01T00:00:00Z")
    b1 = await bob.session(title="b1", starts_at="2099-01-02T00:00:00Z")
    a2 = await alice.session(title="a2", starts_at="2099-01-03T00:00:00Z")
    assert await ids(carol, f"?host={alice.id}") == [a1["id"], a2["id"]]
    assert await ids(carol, f"?host={bob.id}") == [b1["id"]]
    assert await ids(carol, f"?host={carol.id}") == []
    assert await ids(carol, f"?host={alice.id}&status=live") == []
    r = await carol.get("/api/sessions?host=alice")
    assert r.status == 400 and r.error_code == "invalid_parameter"
    r = await carol.get("/api/sessions?host=0")
    assert r.status == 422 and r.error_code == "out_of_range"


async def test_search_matches_title_text_including_korean(api):
    host, other = await api.user(), await api.user()
    basics = await host.session(title="Python 기초 강의", starts_at="2099-01-01T00:00:00Z")
    advanced = await host.session(title="파이썬 심화: 비동기", starts_at="2099-01-02T00:00:00Z")
    tornado = await other.session(title="Tornado와 파이썬", starts_at="2099-01-03T00:00:00Z")
    await host.session(title="Go 입문", description="파이썬 is only in the description")
    assert await ids(host, "?q=%ED%8C%8C%EC%9D%B4%EC%8D%AC") == [advanced["id"], tornado["id"]]  # 파이썬
    assert await ids(host, "?q=기초") == [basics["id"]]
    assert await ids(host, "?q=python") == [basics["id"]]  # ASCII case does not matter
    assert await ids(host, "?q=%20%20%ED%8C%8C%EC%9D%B4%EC%8D%AC%20") == [advanced["id"], tornado["id"]]  # trimmed
    assert await ids(host, f"?q=파이썬&host={other.id}") == [tornado["id"]]
    assert await ids(host, "?q=없는말") == []


async def test_search_takes_like_wildcards_literally(api):
    host = await api.user()
    percent = await host.session(title="100% 완벽 가이드", starts_at="2099-01-01T00:00:00Z")
    await host.session(title="1000 tips", starts_at="2099-01-02T00:00:00Z")
    underscore = await host.session(title="snake_case names", starts_at="2099-01-03T00:00:00Z")
    await host.session(title="snakeXcase names", starts_at="2099-01-04T00:00:00Z")
    bang = await host.session(title="Wow! Great", starts_at="2099-01-05T00:00:00Z")
    await host.session(title="Wow Great", starts_at="2099-01-06T00:00:00Z")
    assert await ids(host, "?q=%25") == [percent["id"]]  # q=%
    assert await ids(host, "?q=100%25") == [percent["id"]]  # q=100%
    assert await ids(host, "?q=10%25%20") == []  # q="10% " (trimmed to "10%"), no title has "10%"
    assert await ids(host, "?q=_") == [underscore["id"]]
    assert await ids(host, "?q=e_c") == [underscore["id"]]
    assert await ids(host, "?q=w!") == [bang["id"]]  # the escape character itself is literal too
    assert await ids(host, "?q=!%25") == []


async def test_pagination_walks_every_page_once(api):
    host, viewer = await api.user(), await api.user()
    made = [await host.session(title=f"s{i}", starts_at=f"2099-01-{i + 1:02d}T00:00:00Z") for i in range(7)]
    everything = await ids(viewer, "?limit=100")
    assert everything == [s["id"] for s in made]
    seen, pages, cursor = [], 0, None
    while True:
        r = await viewer.get("/api/sessions?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        pages += 1
        assert len(r.json["items"]) <= 3
        seen += [s["id"] for s in r.json["items"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert seen == everything and len(set(seen)) == 7 and pages == 3
    # offset is the plain form of the same thing, and the default page holds 20.
    assert await ids(viewer, "?limit=3&offset=3") == everything[3:6]
    assert await ids(viewer, "?offset=6") == everything[6:]
    r = await viewer.get("/api/sessions")
    assert len(r.json["items"]) == 7 and r.json["next_cursor"] is None


async def test_a_full_last_page_ends_with_an_empty_page(api):
    host = await api.user()
    made = [await host.session(title=f"s{i}", starts_at=f"2099-02-{i + 1:02d}T00:00:00Z") for i in range(4)]
    r = await host.get("/api/sessions?limit=2")
    r = await host.get(f"/api/sessions?limit=2&cursor={r.json['next_cursor']}")
    assert [s["id"] for s in r.json["items"]] == [made[2]["id"], made[3]["id"]]
    r = await host.get(f"/api/sessions?limit=2&cursor={r.json['next_cursor']}")
    assert r.json == {"items": [], "next_cursor": None}


@pytest.mark.parametrize("query,status,code", [
    ("cursor=not-a-cursor", 400, "invalid_cursor"),
    ("cursor=%25%25%25", 400, "invalid_cursor"),
    (f"cursor={cursor_for('x:5')}", 400, "invalid_cursor"),
    (f"cursor={cursor_for('o:-5')}", 400, "invalid_cursor"),
    (f"cursor={cursor_for('o:five')}", 400, "invalid_cursor"),
    (f"cursor={cursor_for('o:' + '9' * 40)}", 400, "invalid_cursor"),
    (f"cursor={base64.urlsafe_b64encode(bytes([0xff, 0xfe, 0x3a])).decode()}", 400, "invalid_cursor"),
    ("limit=0", 422, "out_of_range"),
    ("limit=101", 422, "out_of_range"),
    ("limit=ten", 400, "invalid_parameter"),
    ("offset=-1", 422, "out_of_range"),
    ("offset=1.5", 400, "invalid_parameter"),
])
async def test_bad_paging_parameters_are_refused(api, query, status, code):
    alice = await api.user()
    await alice.session()
    r = await alice.get(f"/api/sessions?{query}")
    assert (r.status, r.error_code) == (status, code), r


async def test_list_shows_each_viewer_their_own_reserved_flag(api):
    host, ann, bob = await api.user(), await api.user(), await api.user()
    s = await host.session()
    assert (await ann.post(f"/api/sessions/{s['id']}/reservation")).status == 201
    mine = (await ann.get("/api/sessions")).json["items"][0]
    theirs = (await bob.get("/api/sessions")).json["items"][0]
    assert (mine["reserved"], mine["reservations"]) == (True, 1)
    assert (theirs["reserved"], theirs["reservations"]) == (False, 1)


# ---------------------------------------------------------------------------- edit


async def test_host_edits_only_the_given_fields(api, services):
    host = await api.user()
    s = await host.session(title="Old", description="keep me", tags=["a"], reservation_target=5)
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", {"title": "새 제목 ✏️", "tags": ["b", "c"]})
    assert r.status == 200, r
    e = r.json["session"]
    assert (e["title"], e["description"], e["tags"], e["reservation_target"]) == ("새 제목 ✏️", "keep me", ["b", "c"], 5)
    assert e["starts_at"] == s["starts_at"]
    assert (await host.get(f"/api/sessions/{s['id']}")).json["session"] == e
    r = await host.call("PATCH", f"/api/sessions/{s['id']}",
                        {"description": None, "reservation_target": None, "tags": None})
    assert r.status == 200, r
    e = r.json["session"]
    assert (e["description"], e["reservation_target"], e["tags"]) == ("", None, [])
    assert (await row(services, s["id"]))["title"] == "새 제목 ✏️"


async def test_edit_with_an_empty_body_changes_nothing(api, services):
    host = await api.user()
    s = await host.session()
    before = await row(services, s["id"])
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", {})
    assert r.status == 200 and r.json["session"]["title"] == s["title"]
    assert await row(services, s["id"]) == before


@pytest.mark.parametrize("body,status,code", [
    ({"title": ""}, 422, "empty_field"),
    ({"title": "x" * 201}, 422, "too_long"),
    ({"title": None}, 400, "invalid_field"),
    ({"title": 5}, 400, "invalid_field"),
    ({"description": "d" * 5001}, 422, "too_long"),
    ({"starts_at": "2099-05-01T10:00:00"}, 422, "invalid_time"),
    ({"starts_at": "2001-05-01T10:00:00+09:00"}, 422, "starts_at_in_past"),
    ({"starts_at": None}, 400, "invalid_field"),
    ({"tags": [f"t{i}" for i in range(11)]}, 422, "too_many"),
    ({"reservation_target": -1}, 422, "out_of_range"),
    ({"title": "valid", "reservation_target": "many"}, 400, "invalid_field"),
    ([{"title": "x"}], 400, "invalid_body"),
])
async def test_bad_edit_is_refused_and_changes_nothing(api, services, body, status, code):
    host = await api.user()
    s = await host.session(title="Unchanged", tags=["t"], reservation_target=3)
    before = await row(services, s["id"])
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", body)
    assert (r.status, r.error_code) == (status, code), r
    assert await row(services, s["id"]) == before


async def test_edit_with_malformed_json_is_400(api, services):
    host = await api.user()
    s = await host.session()
    before = await row(services, s["id"])
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", raw=b"{title: 1}")
    assert r.status == 400 and r.error_code == "invalid_json"
    assert await row(services, s["id"]) == before


async def test_only_the_host_may_edit(api, services):
    host, guest = await api.user(), await api.user()
    s = await host.session(title="Mine")
    before = await row(services, s["id"])
    r = await guest.call("PATCH", f"/api/sessions/{s['id']}", {"title": "Hijacked"})
    assert r.status == 403 and r.error_code == "not_host"
    r = await api.call("PATCH", f"/api/sessions/{s['id']}", {"title": "Anonymous"})
    assert r.status == 401
    assert await row(services, s["id"]) == before
    r = await guest.call("PATCH", "/api/sessions/999999", {"title": "Nowhere"})
    assert r.status == 404 and r.error_code == "session_not_found"


@pytest.mark.parametrize("state", ["live", "ended", "cancelled"])
async def test_a_session_that_is_not_scheduled_cannot_be_edited(api, services, state):
    host = await api.user()
    s = await host.session(title="Frozen")
    if state == "cancelled":
        assert (await host.call("DELETE", f"/api/sessions/{s['id']}")).status == 200
    else:
        await _start(host, s)
        if state == "ended":
            await _end(host, s)
    before = await row(services, s["id"])
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", {"title": "Thawed"})
    assert r.status == 409 and r.error_code == "not_scheduled"
    assert await row(services, s["id"]) == before


# ---------------------------------------------------------------------------- cancel


async def test_host_cancels_and_the_session_leaves_the_default_list(api, services):
    host, guest = await api.user(), await api.user()
    s = await host.session()
    r = await guest.call("DELETE", f"/api/sessions/{s['id']}")
    assert r.status == 403 and r.error_code == "not_host"
    assert (await row(services, s["id"]))["status"] == "scheduled"
    r = await api.call("DELETE", f"/api/sessions/{s['id']}")
    assert r.status == 401
    r = await host.call("DELETE", f"/api/sessions/{s['id']}")
    assert r.status == 200 and r.json["session"]["status"] == "cancelled"
    assert (await host.get(f"/api/sessions/{s['id']}")).json["session"]["status"] == "cancelled"
    assert (await row(services, s["id"]))["status"] == "cancelled"
    assert await ids(guest) == []
    r = await host.call("DELETE", f"/api/sessions/{s['id']}")
    assert r.status == 409 and r.error_code == "not_scheduled"
    r = await host.call("DELETE", "/api/sessions/999999")
    assert r.status == 404


async def test_a_live_session_cannot_be_cancelled(api, services):
    host = await api.user()
    s = await host.session()
    await _start(host, s)
    r = await host.call("DELETE", f"/api/sessions/{s['id']}")
    assert r.status == 409 and r.error_code == "not_scheduled"
    assert (await row(services, s["id"]))["status"] == "live"


# ---------------------------------------------------------------------------- state machine


async def test_scheduled_to_live_to_ended_by_the_host(api, services):
    host = await api.user()
    s = await host.session()
    r = await host.post(f"/api/sessions/{s['id']}/start")
    assert r.status == 200, r
    live = r.json["session"]
    assert live["status"] == "live" and live["started_at"] is not None and live["ended_at"] is None
    r = await host.post(f"/api/sessions/{s['id']}/end")
    assert r.status == 200, r
    ended = r.json["session"]
    assert ended["status"] == "ended" and ended["started_at"] == live["started_at"]
    assert ended["ended_at"] is not None and ended["ended_at"] >= ended["started_at"]
    db = await row(services, s["id"])
    assert db["status"] == "ended" and db["started_at"] is not None and db["ended_at"] is not None


async def test_a_guest_cannot_start_or_end(api, services):
    host, guest = await api.user(), await api.user()
    s = await host.session()
    r = await guest.post(f"/api/sessions/{s['id']}/start")
    assert r.status == 403 and r.error_code == "not_host"
    assert (await row(services, s["id"]))["status"] == "scheduled"
    await _start(host, s)
    r = await guest.post(f"/api/sessions/{s['id']}/end")
    assert r.status == 403 and r.error_code == "not_host"
    assert (await row(services, s["id"]))["status"] == "live"


async def test_wrong_state_transitions_are_409_and_change_nothing(api, services):
    host = await api.user()
    s = await host.session()
    r = await host.post(f"/api/sessions/{s['id']}/end")
    assert r.status == 409 and r.error_code == "not_live"
    assert (await row(services, s["id"]))["status"] == "scheduled"
    await _start(host, s)
    before = await row(services, s["id"])
    r = await host.post(f"/api/sessions/{s['id']}/start")
    assert r.status == 409 and r.error_code == "not_scheduled"
    assert await row(services, s["id"]) == before  # started_at not restamped
    await _end(host, s)
    before = await row(services, s["id"])
    for action, code in [("start", "not_scheduled"), ("end", "not_live")]:
        r = await host.post(f"/api/sessions/{s['id']}/{action}")
        assert r.status == 409 and r.error_code == code
    assert await row(services, s["id"]) == before
    cancelled = await host.session()
    assert (await host.call("DELETE", f"/api/sessions/{cancelled['id']}")).status == 200
    r = await host.post(f"/api/sessions/{cancelled['id']}/start")
    assert r.status == 409
    assert (await row(services, cancelled["id"]))["status"] == "cancelled"


@pytest.mark.parametrize("action", ["start", "end", "confirm"])
async def test_actions_on_unknown_sessions_and_without_a_token(api, action):
    host = await api.user()
    s = await host.session()
    r = await host.post(f"/api/sessions/424242/{action}")
    assert r.status == 404 and r.error_code == "session_not_found"
    r = await api.call("POST", f"/api/sessions/{s['id']}/{action}")
    assert r.status == 401
    r = await host.post(f"/api/sessions/{s['id']}/explode")
    assert r.status == 404


# ---------------------------------------------------------------------------- confirm


async def test_host_confirms_the_time(api, services):
    host = await api.user()
    s = await host.session()
    r = await host.post(f"/api/sessions/{s['id']}/confirm")
    assert r.status == 200, r
    c = r.json["session"]
    assert c["confirmed"] is True and c["confirmed_at"] is not None and c["starts_at"] == s["starts_at"]
    assert (await row(services, s["id"]))["confirmed_at"] is not None


async def test_confirm_with_a_new_start_time(api):
    host = await api.user()
    s = await host.session()
    r = await host.post(f"/api/sessions/{s['id']}/confirm", {"starts_at": "2099-06-01T20:00:00+09:00"})
    assert r.status == 200, r
    c = r.json["session"]
    assert c["confirmed"] is True and c["starts_at"] == "2099-06-01T11:00:00.000Z"
    assert (await host.get(f"/api/sessions/{s['id']}")).json["session"]["starts_at"] == "2099-06-01T11:00:00.000Z"


@pytest.mark.parametrize("body,raw,status,code", [
    ({"starts_at": "2099-06-01T20:00:00"}, None, 422, "invalid_time"),
    ({"starts_at": "2000-06-01T20:00:00Z"}, None, 422, "starts_at_in_past"),
    ({"starts_at": 12}, None, 400, "invalid_field"),
    (None, b"{not json", 400, "invalid_json"),
    (None, b"[]", 400, "invalid_body"),
])
async def test_bad_confirm_changes_nothing(api, services, body, raw, status, code):
    host = await api.user()
    s = await host.session()
    before = await row(services, s["id"])
    r = await host.call("POST", f"/api/sessions/{s['id']}/confirm", body, raw=raw)
    assert (r.status, r.error_code) == (status, code), r
    assert await row(services, s["id"]) == before


async def test_only_the_host_confirms_and_only_while_scheduled(api, services):
    host, guest = await api.user(), await api.user()
    s = await host.session()
    r = await guest.post(f"/api/sessions/{s['id']}/confirm")
    assert r.status == 403 and r.error_code == "not_host"
    assert (await row(services, s["id"]))["confirmed_at"] is None
    await _start(host, s)
    r = await host.post(f"/api/sessions/{s['id']}/confirm")
    assert r.status == 409 and r.error_code == "not_scheduled"
    assert (await row(services, s["id"]))["confirmed_at"] is None


async def test_moving_the_start_time_withdraws_the_confirmation(api):
    host = await api.user()
    s = await host.session()
    assert (await host.post(f"/api/sessions/{s['id']}/confirm")).status == 200
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", {"title": "Renamed only"})
    assert r.json["session"]["confirmed"] is True  # other edits keep it
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", {"starts_at": "2099-07-01T00:00:00Z"})
    assert r.status == 200, r
    e = r.json["session"]
    assert e["confirmed"] is False and e["confirmed_at"] is None and e["starts_at"] == "2099-07-01T00:00:00.000Z"
    r = await host.post(f"/api/sessions/{s['id']}/confirm")
    assert r.json["session"]["confirmed"] is True


# ---------------------------------------------------------------------------- reservations


async def test_reserve_cancel_and_reserve_again(api, services):
    host, guest = await api.user(), await api.user()
    s = await host.session()
    path = f"/api/sessions/{s['id']}/reservation"
    r = await guest.post(path)
    assert r.status == 201, r
    assert (r.json["session"]["reservations"], r.json["session"]["reserved"]) == (1, True)
    assert await reservation_rows(services, s["id"]) == [{"user_id": guest.id}]
    # The host sees the count, but has no reservation of their own.
    h = (await host.get(f"/api/sessions/{s['id']}")).json["session"]
    assert (h["reservations"], h["reserved"]) == (1, False)

    r = await guest.post(path)
    assert r.status == 409 and r.error_code == "already_reserved"
    assert (await row(services, s["id"]))["reservation_count"] == 1
    assert len(await reservation_rows(services, s["id"])) == 1

    r = await guest.call("DELETE", path)
    assert r.status == 200, r
    assert (r.json["session"]["reservations"], r.json["session"]["reserved"]) == (0, False)
    assert await reservation_rows(services, s["id"]) == []

    r = await guest.call("DELETE", path)
    assert r.status == 404 and r.error_code == "not_reserved"
    assert (await row(services, s["id"]))["reservation_count"] == 0

    r = await guest.post(path)
    assert r.status == 201 and r.json["session"]["reservations"] == 1
    assert (await guest.get(f"/api/sessions/{s['id']}")).json["session"]["reserved"] is True


async def test_unreserve_without_a_reservation_is_404_and_leaves_others(api, services):
    host, ann, bob = await api.user(), await api.user(), await api.user()
    s = await host.session()
    assert (await ann.post(f"/api/sessions/{s['id']}/reservation")).status == 201
    r = await bob.call("DELETE", f"/api/sessions/{s['id']}/reservation")
    assert r.status == 404 and r.error_code == "not_reserved"
    assert (await row(services, s["id"]))["reservation_count"] == 1
    assert await reservation_rows(services, s["id"]) == [{"user_id": ann.id}]


async def test_the_host_cannot_reserve_their_own_session(api, services):
    host = await api.user()
    s = await host.session()
    r = await host.post(f"/api/sessions/{s['id']}/reservation")
    assert r.status == 403 and r.error_code == "host_cannot_reserve"
    assert await reservation_rows(services, s["id"]) == []
    assert (await row(services, s["id"]))["reservation_count"] == 0


@pytest.mark.parametrize("state", ["live", "ended", "cancelled"])
async def test_only_a_scheduled_session_takes_reservations(api, services, state):
    host, guest = await api.user(), await api.user()
    s = await host.session()
    if state == "cancelled":
        assert (await host.call("DELETE", f"/api/sessions/{s['id']}")).status == 200
    else:
        await _start(host, s)
        if state == "ended":
            await _end(host, s)
    r = await guest.post(f"/api/sessions/{s['id']}/reservation")
    assert r.status == 409 and r.error_code == "not_scheduled"
    assert await reservation_rows(services, s["id"]) == []
    assert (await row(services, s["id"]))["reservation_count"] == 0


async def test_reservation_endpoints_on_unknown_sessions_and_without_a_token(api):
    host = await api.user()
    s = await host.session()
    for method, suffix in [("POST", "reservation"), ("DELETE", "reservation"), ("GET", "reservations")]:
        r = await host.call(method, f"/api/sessions/777777/{suffix}")
        assert r.status == 404 and r.error_code == "session_not_found", (method, r)
        r = await api.call(method, f"/api/sessions/{s['id']}/{suffix}")
        assert r.status == 401, (method, r)


async def test_the_host_sees_who_reserved_and_a_guest_may_not(api):
    host = await api.user()
    ann = await api.user("ann", "앤 🙂")
    bob = await api.user("bob", "Bob")
    s = await host.session()
    r = await host.get(f"/api/sessions/{s['id']}/reservations")
    assert r.status == 200 and r.json == {"items": []}
    for guest in (ann, bob):
        assert (await guest.post(f"/api/sessions/{s['id']}/reservation")).status == 201
    r = await host.get(f"/api/sessions/{s['id']}/reservations")
    assert r.status == 200, r
    assert [item["user"]["id"] for item in r.json["items"]] == [ann.id, bob.id]  # oldest first
    by_id = {item["user"]["id"]: item for item in r.json["items"]}
    assert by_id[ann.id]["user"] == {"id": ann.id, "username": "ann", "display_name": "앤 🙂"}
    assert all(item["reserved_at"].endswith("Z") for item in r.json["items"])
    r = await ann.get(f"/api/sessions/{s['id']}/reservations")
    assert r.status == 403 and r.error_code == "not_host"
    assert (await bob.call("DELETE", f"/api/sessions/{s['id']}/reservation")).status == 200
    r = await host.get(f"/api/sessions/{s['id']}/reservations")
    assert [item["user"]["id"] for item in r.json["items"]] == [ann.id]


async def test_reservation_target_progress(api):
    host, ann, bob, cho = await api.user(), await api.user(), await api.user(), await api.user()
    s = await host.session(reservation_target=2)
    path = f"/api/sessions/{s['id']}/reservation"
    assert (s["reservations"], s["target_reached"]) == (0, False)
    r = await ann.post(path)
    assert (r.json["session"]["reservations"], r.json["session"]["target_reached"]) == (1, False)
    r = await bob.post(path)
    assert (r.json["session"]["reservations"], r.json["session"]["target_reached"]) == (2, True)
    r = await cho.post(path)  # past the target is still fine
    assert (r.json["session"]["reservations"], r.json["session"]["target_reached"]) == (3, True)
    await ann.call("DELETE", path)
    await bob.call("DELETE", path)
    got = (await host.get(f"/api/sessions/{s['id']}")).json["session"]
    assert (got["reservations"], got["target_reached"]) == (1, False)
    # Lowering the target to what is already reserved reaches it.
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", {"reservation_target": 1})
    assert r.json["session"]["target_reached"] is True
    r = await host.call("PATCH", f"/api/sessions/{s['id']}", {"reservation_target": None})
    assert r.json["session"]["target_reached"] is False


async def test_concurrent_reservations_are_counted_exactly(api, services):
    host = await api.user()
    s = await host.session(reservation_target=20)
    path = f"/api/sessions/{s['id']}/reservation"
    guests = await asyncio.gather(*(api.user() for _ in range(20)))
    replies = await asyncio.gather(*(g.post(path) for g in guests))
    assert [r.status for r in replies] == [201] * 20, replies
    got = (await host.get(f"/api/sessions/{s['id']}")).json["session"]
    assert (got["reservations"], got["target_reached"]) == (20, True)
    assert (await row(services, s["id"]))["reservation_count"] == 20
    assert len(await reservation_rows(services, s["id"])) == 20
    assert len((await host.get(f"/api/sessions/{s['id']}/reservations")).json["items"]) == 20
    # Everyone (and each of them twice) tries again at once: all refused, nothing added.
    replies = await asyncio.gather(*(g.post(path) for g in guests + guests))
    assert {r.status for r in replies} == {409}
    assert (await row(services, s["id"]))["reservation_count"] == 20

    replies = await asyncio.gather(*(g.call("DELETE", path) for g in guests))
    assert [r.status for r in replies] == [200] * 20, replies
    got = (await host.get(f"/api/sessions/{s['id']}")).json["session"]
    assert (got["reservations"], got["target_reached"]) == (0, False)
    assert (await row(services, s["id"]))["reservation_count"] == 0
    assert await reservation_rows(services, s["id"]) == []


async def test_concurrent_double_reservation_by_one_user_counts_once(api, services):
    host, guest = await api.user(), await api.user()
    s = await host.session()
    path = f"/api/sessions/{s['id']}/reservation"
    replies = await asyncio.gather(*(guest.post(path) for _ in range(8)))
    assert sorted(r.status for r in replies) == [201] + [409] * 7
    assert (await row(services, s["id"]))["reservation_count"] == 1
    replies = await asyncio.gather(*(guest.call("DELETE", path) for _ in range(8)))
    assert sorted(r.status for r in replies) == [200] + [404] * 7
    assert (await row(services, s["id"]))["reservation_count"] == 0
