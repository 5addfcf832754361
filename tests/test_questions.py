"""Pre-questions and the host's cue sheet over REST, on both set-ups, through HTTP."""

import asyncio

import pytest

from conftest import db_rows

pytestmark = pytest.mark.gen_test


# ---------------------------------------------------------------------------- helpers


async def hosted(api, **fields):
    """A host and one scheduled session of theirs."""
    host = await api.user()
    session = await host.session(**fields)
    return host, session["id"]


async def start(host, sid):
    r = await host.post(f"/api/sessions/{sid}/start")
    assert r.status == 200, r


async def end(host, sid):
    await start(host, sid)
    r = await host.post(f"/api/sessions/{sid}/end")
    assert r.status == 200, r


async def listing(account, sid, query="", ids=True):
    sep = "?" if query else ""
    r = await account.get(f"/api/sessions/{sid}/questions{sep}{query}")
    assert r.status == 200, r
    return [q["id"] for q in r.json["items"]] if ids else r.json["items"]


async def question_row(services, qid):
    rows = await db_rows(services, "SELECT * FROM questions WHERE id = ?", qid)
    return rows[0] if rows else None


async def vote_rows(services, qid):
    return await db_rows(services, "SELECT user_id FROM question_votes WHERE question_id = ? ORDER BY user_id", qid)


async def snapshot(services):
    """Everything the cue sheet keeps, to compare before and after a refused request."""
    questions = await db_rows(
        services, "SELECT id, session_id, author_id, text, anonymous, votes, hidden, answered_at, updated_at"
        " FROM questions ORDER BY id")
    votes = await db_rows(services, "SELECT question_id, user_id FROM question_votes ORDER BY question_id, user_id")
    pins = await db_rows(services, "SELECT id, pinned_question_id, status FROM sessions ORDER BY id")
    return questions, votes, pins


# ---------------------------------------------------------------------------- asking


async def test_ask_returns_201_with_the_question_and_stores_it(api, services):
    host, sid = await hosted(api)
    alice = await api.user(display_name="Alice")
    r = await alice.post(f"/api/sessions/{sid}/questions", {"text": "  How do you start?\n "})
    assert r.status == 201, r
    q = r.json["question"]
    assert q["text"] == "How do you start?"  # trimmed
    assert q["session_id"] == sid
    assert q["author"] == {"id": alice.id, "username": alice.user["username"], "display_name": "Alice"}
    assert q["anonymous"] is False and q["mine"] is True
    assert q["votes"] == 0 and q["voted"] is False
    assert q["answered"] is False and q["answered_at"] is None
    assert q["pinned"] is False and q["hidden"] is False
    assert q["created_at"] and q["updated_at"]
    row = await question_row(services, q["id"])
    assert row["text"] == "How do you start?" and int(row["author_id"]) == alice.id
    assert int(row["session_id"]) == sid and int(row["votes"]) == 0
    # Everyone signed in can read it back; it is not "mine" for them.
    got = await host.get(f"/api/questions/{q['id']}")
    assert got.status == 200 and got.json["question"]["text"] == "How do you start?"
    assert got.json["question"]["mine"] is False


async def test_any_signed_in_user_may_ask_in_a_scheduled_or_live_session(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    await alice.question(sid, "before it starts")
    await host.question(sid, "the host may seed one too")
    await start(host, sid)
    await alice.question(sid, "during the session")
    assert len(await db_rows(services, "SELECT id FROM questions WHERE session_id = ?", sid)) == 3


@pytest.mark.parametrize("closing", ["end", "cancel"])
async def test_asking_in_a_closed_session_is_409_and_stores_nothing(api, services, closing):
    host, sid = await hosted(api)
    alice = await api.user()
    if closing == "end":
        await end(host, sid)
    else:
        assert (await host.call("DELETE", f"/api/sessions/{sid}")).status == 200
    r = await alice.post(f"/api/sessions/{sid}/questions", {"text": "too late?"})
    assert r.status == 409 and r.error_code == "session_closed", r
    assert await db_rows(services, "SELECT id FROM questions") == []


async def test_asking_in_an_unknown_session_is_404(api, services):
    alice = await api.user()
    r = await alice.post("/api/sessions/987654/questions", {"text": "anyone?"})
    assert r.status == 404 and r.error_code == "session_not_found"
    r = await alice.get("/api/sessions/987654/questions")
    assert r.status == 404 and r.error_code == "session_not_found"
    assert await db_rows(services, "SELECT id FROM questions") == []


@pytest.mark.parametrize("body,status,code", [
    ({"text": ""}, 422, "empty_field"),
    ({"text": "   \n\t "}, 422, "empty_field"),
    ({"text": "x" * 501}, 422, "too_long"),
    ({"text": "가" * 501}, 422, "too_long"),
    ({"text": "nul\x00byte"}, 422, "invalid_characters"),
    ({"text": 42}, 400, "invalid_field"),
    ({"text": ["a list"]}, 400, "invalid_field"),
    ({"text": None}, 400, "invalid_field"),
    ({}, 400, "missing_field"),
    ({"text": "fine", "anonymous": "yes"}, 400, "invalid_field"),
    (["text"], 400, "invalid_body"),
])
async def test_bad_question_is_refused_and_stores_nothing(api, services, body, status, code):
    host, sid = await hosted(api)
    alice = await api.user()
    r = await alice.post(f"/api/sessions/{sid}/questions", body)
    assert (r.status, r.error_code) == (status, code), r
    assert await db_rows(services, "SELECT id FROM questions") == []
    assert await listing(host, sid) == []


async def test_malformed_json_is_400_everywhere(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid, "original")
    before = await snapshot(services)
    for account, method, path in [
        (alice, "POST", f"/api/sessions/{sid}/questions"),
        (alice, "PATCH", f"/api/questions/{q['id']}"),
        (host, "POST", f"/api/questions/{q['id']}/answer"),
        (host, "POST", f"/api/questions/{q['id']}/pin"),
        (host, "POST", f"/api/questions/{q['id']}/hide"),
    ]:
        for raw in (b'{"text": "unterminated', b'{"text": "lone \\ud800 surrogate"}', b"\xff\xfe"):
            r = await account.call(method, path, raw=raw)
            assert r.status == 400 and r.error_code == "invalid_json", (method, path, raw, r)
    assert await snapshot(services) == before


async def test_body_over_the_cap_is_413_and_stores_nothing(api, services):
    host, sid = await hosted(api)
    r = await host.post(f"/api/sessions/{sid}/questions", {"text": "가" * 30_000})
    assert r.status == 413 and r.error_code == "body_too_large", r
    assert await db_rows(services, "SELECT id FROM questions") == []


async def test_concurrent_questions_all_land_with_distinct_ids(api, services):
    host, sid = await hosted(api)
    await start(host, sid)
    askers = [await api.user() for _ in range(10)]
    results = await asyncio.gather(*(a.post(f"/api/sessions/{sid}/questions", {"text": f"질문 {i}"})
                                     for i, a in enumerate(askers)))
    assert [r.status for r in results] == [201] * 10, results
    ids = {r.json["question"]["id"] for r in results}
    assert len(ids) == 10
    rows = await db_rows(services, "SELECT id, author_id, text FROM questions WHERE session_id = ?", sid)
    assert {int(r["id"]) for r in rows} == ids
    assert {(int(r["author_id"]), r["text"]) for r in rows} == {(a.id, f"질문 {i}") for i, a in enumerate(askers)}
    assert set(await listing(host, sid, "sort=recent")) == ids


async def test_exactly_500_characters_is_accepted_counting_code_points(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    korean = "가나다라마바사아자차" * 50
    assert len(korean) == 500 and len(korean.encode()) == 1500
    q = await alice.question(sid, korean)
    assert q["text"] == korean
    assert (await question_row(services, q["id"]))["text"] == korean
    # Four-byte characters count as one each too.
    emoji = "🎤" * 500
    q = await alice.question(sid, emoji)
    assert (await alice.get(f"/api/questions/{q['id']}")).json["question"]["text"] == emoji
    # The limit counts the text as sent (the OpenAPI document's maxLength), surrounding
    # white space included; what is kept is trimmed.
    padded = "  \n" + "a" * 494 + "\n  "
    q = await alice.question(sid, padded)
    assert q["text"] == "a" * 494
    r = await alice.post(f"/api/sessions/{sid}/questions", {"text": " " + "a" * 500})
    assert (r.status, r.error_code) == (422, "too_long"), r


async def test_unicode_text_round_trips(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    text = "오늘 세션 정말 좋았어요! 🎉🔥 다음엔 뭘 하시나요? 👩‍💻 ñ «ü» 中文"
    q = await alice.question(sid, text)
    assert q["text"] == text
    assert (await host.get(f"/api/questions/{q['id']}")).json["question"]["text"] == text
    assert (await listing(host, sid, ids=False))[0]["text"] == text
    assert (await question_row(services, q["id"]))["text"] == text
    edited = "수정했어요 ✏️🙂"
    r = await alice.call("PATCH", f"/api/questions/{q['id']}", {"text": edited})
    assert r.status == 200 and r.json["question"]["text"] == edited
    assert (await question_row(services, q["id"]))["text"] == edited


# ---------------------------------------------------------------------------- anonymity


async def test_anonymous_question_hides_the_author_from_everyone_but_keeps_the_row(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    bob = await api.user()
    q = await alice.question(sid, "a delicate one", anonymous=True)
    assert q["anonymous"] is True and q["author"] is None and q["mine"] is True
    for viewer, mine in [(host, False), (bob, False), (alice, True)]:
        one = (await viewer.get(f"/api/questions/{q['id']}")).json["question"]
        assert one["author"] is None and one["anonymous"] is True and one["mine"] is mine
        for sort in ("top", "recent"):
            [item] = await listing(viewer, sid, f"sort={sort}", ids=False)
            assert item["author"] is None and item["mine"] is mine
            assert alice.user["username"] not in str(item)
    # Still voted on, answered and returned to the host without the author.
    voted = (await bob.post(f"/api/questions/{q['id']}/vote")).json["question"]
    assert voted["author"] is None and voted["mine"] is False
    answered = (await host.post(f"/api/questions/{q['id']}/answer")).json["question"]
    assert answered["author"] is None and answered["mine"] is False
    # The store keeps who asked (for moderation and for "mine").
    row = await question_row(services, q["id"])
    assert int(row["author_id"]) == alice.id and int(row["anonymous"]) == 1


async def test_anonymous_author_may_still_edit_and_delete_their_own(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    bob = await api.user()
    q = await alice.question(sid, "secret", anonymous=True)
    r = await bob.call("PATCH", f"/api/questions/{q['id']}", {"text": "hijack"})
    assert r.status == 403 and r.error_code == "not_author"
    r = await alice.call("PATCH", f"/api/questions/{q['id']}", {"text": "still secret"})
    assert r.status == 200 and r.json["question"]["author"] is None and r.json["question"]["mine"] is True
    assert (await alice.call("DELETE", f"/api/questions/{q['id']}")).status == 204
    assert await question_row(services, q["id"]) is None


async def test_named_question_shows_the_author(api):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid, "on the record", anonymous=False)
    seen = (await host.get(f"/api/questions/{q['id']}")).json["question"]
    assert seen["author"]["id"] == alice.id and seen["mine"] is False


# ---------------------------------------------------------------------------- voting


async def test_vote_and_unvote_keep_exact_counts(api, services):
    host, sid = await hosted(api)
    alice, bob, carol = [await api.user() for _ in range(3)]
    q = await alice.question(sid)
    path = f"/api/questions/{q['id']}/vote"
    r = await bob.post(path)
    assert r.status == 200 and r.json["question"]["votes"] == 1 and r.json["question"]["voted"] is True
    r = await carol.post(path)
    assert r.json["question"]["votes"] == 2
    # The author and the host may vote as well.
    assert (await alice.post(path)).json["question"]["votes"] == 3
    assert (await host.post(path)).json["question"]["votes"] == 4
    # "voted" is per viewer.
    fresh = await api.user()
    seen = (await fresh.get(f"/api/questions/{q['id']}")).json["question"]
    assert seen["votes"] == 4 and seen["voted"] is False
    assert (await bob.get(f"/api/questions/{q['id']}")).json["question"]["voted"] is True
    r = await bob.call("DELETE", path)
    assert r.status == 200 and r.json["question"]["votes"] == 3 and r.json["question"]["voted"] is False
    assert int((await question_row(services, q["id"]))["votes"]) == 3
    assert [int(v["user_id"]) for v in await vote_rows(services, q["id"])] == sorted([carol.id, alice.id, host.id])
    # The session's counters follow.
    session = (await host.get(f"/api/sessions/{sid}")).json["session"]
    assert session["counts"] == {"questions": 1, "votes": 3}


async def test_second_vote_is_409_and_changes_nothing(api, services):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    q = await alice.question(sid)
    assert (await bob.post(f"/api/questions/{q['id']}/vote")).status == 200
    before = await snapshot(services)
    r = await bob.post(f"/api/questions/{q['id']}/vote")
    assert r.status == 409 and r.error_code == "already_voted"
    assert await snapshot(services) == before
    assert (await bob.get(f"/api/questions/{q['id']}")).json["question"]["votes"] == 1


async def test_unvote_without_a_vote_is_404_and_changes_nothing(api, services):
    host, sid = await hosted(api)
    alice, bob, carol = await api.user(), await api.user(), await api.user()
    q = await alice.question(sid)
    await carol.post(f"/api/questions/{q['id']}/vote")
    before = await snapshot(services)
    r = await bob.call("DELETE", f"/api/questions/{q['id']}/vote")
    assert r.status == 404 and r.error_code == "not_voted"
    assert await snapshot(services) == before
    # Unvoting twice: the second is refused the same way and the count stays.
    assert (await carol.call("DELETE", f"/api/questions/{q['id']}/vote")).status == 200
    r = await carol.call("DELETE", f"/api/questions/{q['id']}/vote")
    assert r.status == 404 and r.error_code == "not_voted"
    assert int((await question_row(services, q["id"]))["votes"]) == 0
    # And a vote after an unvote counts again.
    assert (await carol.post(f"/api/questions/{q['id']}/vote")).json["question"]["votes"] == 1


@pytest.mark.parametrize("closing", ["end", "cancel"])
async def test_voting_in_a_closed_session_is_409(api, services, closing):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    q = await alice.question(sid)
    await host.post(f"/api/questions/{q['id']}/vote")
    if closing == "end":
        await end(host, sid)
    else:
        assert (await host.call("DELETE", f"/api/sessions/{sid}")).status == 200
    before = await snapshot(services)
    r = await bob.post(f"/api/questions/{q['id']}/vote")
    assert r.status == 409 and r.error_code == "session_closed"
    r = await host.call("DELETE", f"/api/questions/{q['id']}/vote")
    assert r.status == 409 and r.error_code == "session_closed"
    assert await snapshot(services) == before
    # The closed session's questions remain readable.
    assert await listing(bob, sid) == [q["id"]]


async def test_voting_in_a_live_session_works(api):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid)
    await start(host, sid)
    assert (await host.post(f"/api/questions/{q['id']}/vote")).json["question"]["votes"] == 1


async def test_concurrent_votes_from_many_users_are_all_counted(api, services):
    host, sid = await hosted(api)
    await start(host, sid)
    q = await host.question(sid, "vote me up")
    voters = [await api.user() for _ in range(15)]
    results = await asyncio.gather(*(v.post(f"/api/questions/{q['id']}/vote") for v in voters))
    assert [r.status for r in results] == [200] * 15, results
    assert sorted(r.json["question"]["votes"] for r in results)[-1] == 15
    assert (await host.get(f"/api/questions/{q['id']}")).json["question"]["votes"] == 15
    assert int((await question_row(services, q["id"]))["votes"]) == 15
    assert [int(v["user_id"]) for v in await vote_rows(services, q["id"])] == sorted(v.id for v in voters)
    # And taking them back concurrently brings it to exactly zero.
    results = await asyncio.gather(*(v.call("DELETE", f"/api/questions/{q['id']}/vote") for v in voters))
    assert [r.status for r in results] == [200] * 15, results
    assert int((await question_row(services, q["id"]))["votes"]) == 0
    assert await vote_rows(services, q["id"]) == []


async def test_one_user_voting_five_times_at_once_counts_once(api, services):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    q = await alice.question(sid)
    results = await asyncio.gather(*(bob.post(f"/api/questions/{q['id']}/vote") for _ in range(5)))
    statuses = sorted(r.status for r in results)
    assert statuses == [200, 409, 409, 409, 409], results
    assert all(r.error_code == "already_voted" for r in results if r.status == 409)
    assert (await bob.get(f"/api/questions/{q['id']}")).json["question"]["votes"] == 1
    assert int((await question_row(services, q["id"]))["votes"]) == 1
    assert [int(v["user_id"]) for v in await vote_rows(services, q["id"])] == [bob.id]
    # Five concurrent unvotes: one succeeds, the others find no vote.
    results = await asyncio.gather(*(bob.call("DELETE", f"/api/questions/{q['id']}/vote") for _ in range(5)))
    assert sorted(r.status for r in results) == [200, 404, 404, 404, 404], results
    assert int((await question_row(services, q["id"]))["votes"]) == 0


# ---------------------------------------------------------------------------- ordering and paging


async def test_sort_top_pinned_then_votes_then_oldest_answered_last(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    voters = [await api.user() for _ in range(3)]
    a = await alice.question(sid, "A: two votes")
    b = await alice.question(sid, "B: no votes, older")
    c = await alice.question(sid, "C: three votes, answered")
    d = await alice.question(sid, "D: two votes, newer than A")
    e = await alice.question(sid, "E: no votes, newer than B")
    f = await alice.question(sid, "F: one vote, will be pinned")
    g = await alice.question(sid, "G: one vote, answered, newer than C")
    for q, n in [(a, 2), (c, 3), (d, 2), (f, 1), (g, 1)]:
        for v in voters[:n]:
            assert (await v.post(f"/api/questions/{q['id']}/vote")).status == 200
    assert (await host.post(f"/api/questions/{c['id']}/answer")).status == 200
    assert (await host.post(f"/api/questions/{g['id']}/answer")).status == 200
    assert await listing(host, sid) == [a["id"], d["id"], f["id"], b["id"], e["id"], c["id"], g["id"]]
    assert (await host.post(f"/api/questions/{f['id']}/pin")).status == 200
    expected = [f["id"], a["id"], d["id"], b["id"], e["id"], c["id"], g["id"]]
    assert await listing(host, sid, "sort=top") == expected
    assert await listing(alice, sid) == expected  # top is the default
    # A newer vote moves D above A.
    await voters[2].post(f"/api/questions/{d['id']}/vote")
    assert (await listing(alice, sid))[:3] == [f["id"], d["id"], a["id"]]
    # Un-answering brings C back among the open questions by its votes (3, tied with D: C is older).
    assert (await host.post(f"/api/questions/{c['id']}/answer", {"value": False})).status == 200
    assert await listing(alice, sid) == [f["id"], c["id"], d["id"], a["id"], b["id"], e["id"], g["id"]]


async def test_sort_top_ties_go_to_the_oldest_even_within_one_millisecond(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    ids = [(await alice.question(sid, f"q{i}"))["id"] for i in range(4)]
    # Force identical creation times: the order must still be stable, oldest (lowest id) first.
    await db_rows(services, "UPDATE questions SET created_at = ?", "2030-01-01 00:00:00.000")
    assert await listing(alice, sid) == ids
    assert await listing(alice, sid, "sort=recent") == ids[::-1]


async def test_sort_recent_is_newest_first_regardless_of_votes_pins_and_answers(api):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    ids = [(await alice.question(sid, f"question {i}"))["id"] for i in range(5)]
    await bob.post(f"/api/questions/{ids[0]}/vote")
    await host.post(f"/api/questions/{ids[1]}/pin")
    await host.post(f"/api/questions/{ids[4]}/answer")
    assert await listing(bob, sid, "sort=recent") == ids[::-1]


@pytest.mark.parametrize("query,status,code", [
    ("sort=best", 422, "invalid_sort"),
    ("sort=", 422, "invalid_sort"),
    ("sort=TOP", 422, "invalid_sort"),
    ("limit=0", 422, "out_of_range"),
    ("limit=101", 422, "out_of_range"),
    ("limit=ten", 400, "invalid_parameter"),
    ("cursor=not-a-cursor", 400, "invalid_cursor"),
])
async def test_bad_list_parameters_are_refused(api, query, status, code):
    host, sid = await hosted(api)
    await host.question(sid)
    r = await host.get(f"/api/sessions/{sid}/questions?{query}")
    assert (r.status, r.error_code) == (status, code), r


async def test_list_pages_with_a_cursor_without_gaps_or_repeats(api):
    host, sid = await hosted(api)
    alice = await api.user()
    ids = [(await alice.question(sid, f"q{i}"))["id"] for i in range(7)]
    for sort, expected in [("recent", ids[::-1]), ("top", ids)]:
        seen, cursor, pages = [], None, 0
        while True:
            query = f"sort={sort}&limit=3" + (f"&cursor={cursor}" if cursor else "")
            r = await alice.get(f"/api/sessions/{sid}/questions?{query}")
            assert r.status == 200, r
            assert len(r.json["items"]) <= 3
            seen += [q["id"] for q in r.json["items"]]
            cursor = r.json["next_cursor"]
            pages += 1
            if cursor is None:
                break
        assert seen == expected and pages == 3


async def test_list_is_per_session(api):
    host, sid = await hosted(api)
    _, other = await hosted(api)
    alice = await api.user()
    mine = await alice.question(sid, "here")
    await alice.question(other, "there")
    assert await listing(alice, sid) == [mine["id"]]
    r = await alice.get(f"/api/sessions/{sid}/questions")
    assert r.json["next_cursor"] is None


# ---------------------------------------------------------------------------- moderation


@pytest.mark.parametrize("action", ["answer", "pin", "hide"])
async def test_only_the_host_moderates(api, services, action):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    q = await alice.question(sid)
    other_host, _ = await hosted(api)
    before = await snapshot(services)
    for who in (alice, bob):  # neither the author nor a bystander
        r = await who.post(f"/api/questions/{q['id']}/{action}")
        assert r.status == 403 and r.error_code == "not_host", r
        r = await who.post(f"/api/questions/{q['id']}/{action}", {"value": False})
        assert r.status == 403 and r.error_code == "not_host", r
    assert await snapshot(services) == before
    # A host of another session is not this session's host either.
    r = await other_host.post(f"/api/questions/{q['id']}/{action}")
    assert r.status == 403 and r.error_code == "not_host"
    assert await snapshot(services) == before


@pytest.mark.parametrize("action", ["answer", "pin", "hide"])
async def test_moderation_value_must_be_boolean(api, services, action):
    host, sid = await hosted(api)
    q = await host.question(sid)
    before = await snapshot(services)
    for body in ({"value": "true"}, {"value": 1}, {"value": None}, [True]):
        r = await host.post(f"/api/questions/{q['id']}/{action}", body)
        assert r.status == 400 and r.error_code in ("invalid_field", "invalid_body"), (body, r)
    assert await snapshot(services) == before


async def test_answer_and_unanswer(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid)
    r = await host.post(f"/api/questions/{q['id']}/answer")
    assert r.status == 200 and r.json["question"]["answered"] is True and r.json["question"]["answered_at"]
    first_answered_at = r.json["question"]["answered_at"]
    assert (await question_row(services, q["id"]))["answered_at"] is not None
    # Answering again keeps the first time.
    r = await host.post(f"/api/questions/{q['id']}/answer", {"value": True})
    assert r.status == 200 and r.json["question"]["answered_at"] == first_answered_at
    r = await host.post(f"/api/questions/{q['id']}/answer", {"value": False})
    assert r.status == 200 and r.json["question"]["answered"] is False and r.json["question"]["answered_at"] is None
    assert (await question_row(services, q["id"]))["answered_at"] is None


async def test_host_moderates_after_the_session_ended(api):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid)
    await end(host, sid)
    r = await host.post(f"/api/questions/{q['id']}/answer")
    assert r.status == 200 and r.json["question"]["answered"] is True


async def test_at_most_one_question_is_pinned_per_session(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    q1, q2, q3 = [await alice.question(sid, f"q{i}") for i in range(3)]
    r = await host.post(f"/api/questions/{q1['id']}/pin")
    assert r.status == 200 and r.json["question"]["pinned"] is True
    session = (await host.get(f"/api/sessions/{sid}")).json["session"]
    assert session["pinned_question_id"] == q1["id"]
    r = await host.post(f"/api/questions/{q2['id']}/pin")
    assert r.status == 200 and r.json["question"]["pinned"] is True
    assert (await alice.get(f"/api/questions/{q1['id']}")).json["question"]["pinned"] is False
    items = await listing(alice, sid, ids=False)
    assert [q["id"] for q in items if q["pinned"]] == [q2["id"]]
    assert items[0]["id"] == q2["id"]
    # Unpinning a question that is not pinned leaves the real pin alone.
    r = await host.post(f"/api/questions/{q3['id']}/pin", {"value": False})
    assert r.status == 200 and r.json["question"]["pinned"] is False
    assert (await host.get(f"/api/sessions/{sid}")).json["session"]["pinned_question_id"] == q2["id"]
    # Unpinning the pinned one clears it.
    r = await host.post(f"/api/questions/{q2['id']}/pin", {"value": False})
    assert r.status == 200 and r.json["question"]["pinned"] is False
    assert (await db_rows(services, "SELECT pinned_question_id FROM sessions WHERE id = ?", sid))[0][
        "pinned_question_id"] is None
    assert not any(q["pinned"] for q in await listing(alice, sid, ids=False))


async def test_concurrent_pins_leave_exactly_one_pinned(api, services):
    host, sid = await hosted(api)
    qs = [await host.question(sid, f"q{i}") for i in range(5)]
    results = await asyncio.gather(*(host.post(f"/api/questions/{q['id']}/pin") for q in qs))
    assert [r.status for r in results] == [200] * 5, results
    pinned = (await host.get(f"/api/sessions/{sid}")).json["session"]["pinned_question_id"]
    items = await listing(host, sid, ids=False)
    assert [q["id"] for q in items if q["pinned"]] == [pinned]
    assert items[0]["id"] == pinned


async def test_pins_of_two_sessions_are_independent(api):
    host, sid = await hosted(api)
    other = (await host.session(title="second"))["id"]
    a = await host.question(sid)
    b = await host.question(other)
    await host.post(f"/api/questions/{a['id']}/pin")
    await host.post(f"/api/questions/{b['id']}/pin")
    assert (await host.get(f"/api/questions/{a['id']}")).json["question"]["pinned"] is True
    assert (await host.get(f"/api/questions/{b['id']}")).json["question"]["pinned"] is True


@pytest.mark.parametrize("action", ["answer", "hide"])
async def test_answering_or_hiding_the_pinned_question_unpins_it(api, services, action):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid)
    await host.post(f"/api/questions/{q['id']}/pin")
    r = await host.post(f"/api/questions/{q['id']}/{action}")
    assert r.status == 200 and r.json["question"]["pinned"] is False
    assert (await host.get(f"/api/sessions/{sid}")).json["session"]["pinned_question_id"] is None
    # Undoing it does not bring the pin back.
    r = await host.post(f"/api/questions/{q['id']}/{action}", {"value": False})
    assert r.status == 200 and r.json["question"]["pinned"] is False


async def test_answering_or_hiding_another_question_keeps_the_pin(api):
    host, sid = await hosted(api)
    alice = await api.user()
    pinned, other, third = [await alice.question(sid, f"q{i}") for i in range(3)]
    await host.post(f"/api/questions/{pinned['id']}/pin")
    await host.post(f"/api/questions/{other['id']}/answer")
    await host.post(f"/api/questions/{third['id']}/hide")
    assert (await host.get(f"/api/sessions/{sid}")).json["session"]["pinned_question_id"] == pinned["id"]


@pytest.mark.parametrize("state,code", [("hide", "question_hidden"), ("answer", "question_answered")])
async def test_pinning_a_hidden_or_answered_question_is_409(api, services, state, code):
    host, sid = await hosted(api)
    alice = await api.user()
    keep = await alice.question(sid, "pinned already")
    q = await alice.question(sid)
    await host.post(f"/api/questions/{keep['id']}/pin")
    await host.post(f"/api/questions/{q['id']}/{state}")
    before = await snapshot(services)
    r = await host.post(f"/api/questions/{q['id']}/pin")
    assert r.status == 409 and r.error_code == code, r
    assert await snapshot(services) == before
    assert (await host.get(f"/api/sessions/{sid}")).json["session"]["pinned_question_id"] == keep["id"]
    # Once restored it can be pinned.
    await host.post(f"/api/questions/{q['id']}/{state}", {"value": False})
    assert (await host.post(f"/api/questions/{q['id']}/pin")).json["question"]["pinned"] is True


async def test_hidden_questions_vanish_for_guests_but_not_for_the_host(api, services):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    shown = await alice.question(sid, "fine")
    q = await alice.question(sid, "rude")
    await bob.post(f"/api/questions/{q['id']}/vote")
    r = await host.post(f"/api/questions/{q['id']}/hide")
    assert r.status == 200 and r.json["question"]["hidden"] is True
    assert int((await question_row(services, q["id"]))["hidden"]) == 1
    for guest in (alice, bob):  # the author too
        assert await listing(guest, sid) == [shown["id"]]
        assert await listing(guest, sid, "sort=recent") == [shown["id"]]
        r = await guest.get(f"/api/questions/{q['id']}")
        assert r.status == 404 and r.error_code == "question_not_found"
    # Guests cannot act on it either, and learn nothing from trying.
    before = await snapshot(services)
    assert (await bob.post(f"/api/questions/{q['id']}/vote")).status == 404
    assert (await bob.call("DELETE", f"/api/questions/{q['id']}/vote")).status == 404
    assert (await alice.call("PATCH", f"/api/questions/{q['id']}", {"text": "sorry"})).status == 404
    assert (await alice.call("DELETE", f"/api/questions/{q['id']}")).status == 404
    assert await snapshot(services) == before
    # The host sees it, marked hidden.
    items = await listing(host, sid, ids=False)
    assert {i["id"]: i["hidden"] for i in items} == {shown["id"]: False, q["id"]: True}
    assert (await host.get(f"/api/questions/{q['id']}")).json["question"]["hidden"] is True
    # The session's public counters leave it out.
    assert (await bob.get(f"/api/sessions/{sid}")).json["session"]["counts"] == {"questions": 1, "votes": 0}
    # Unhiding brings it back for everyone, votes intact.
    r = await host.post(f"/api/questions/{q['id']}/hide", {"value": False})
    assert r.status == 200 and r.json["question"]["hidden"] is False
    back = (await bob.get(f"/api/questions/{q['id']}")).json["question"]
    assert back["votes"] == 1 and back["voted"] is True
    assert set(await listing(bob, sid)) == {shown["id"], q["id"]}


# ---------------------------------------------------------------------------- editing and deleting


async def test_author_edits_own_question(api, services):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    q = await alice.question(sid, "first draft")
    await bob.post(f"/api/questions/{q['id']}/vote")
    await db_rows(services, "UPDATE questions SET updated_at = ? WHERE id = ?", "2000-01-01 00:00:00.000", q["id"])
    r = await alice.call("PATCH", f"/api/questions/{q['id']}", {"text": "  second draft  "})
    assert r.status == 200, r
    edited = r.json["question"]
    assert edited["text"] == "second draft" and edited["votes"] == 1 and edited["mine"] is True
    assert edited["created_at"] == q["created_at"]
    assert edited["updated_at"] >= q["created_at"]  # stamped by the edit, not left at 2000
    row = await question_row(services, q["id"])
    assert row["text"] == "second draft" and not str(row["updated_at"]).startswith("2000")


@pytest.mark.parametrize("body,status,code", [
    ({"text": ""}, 422, "empty_field"),
    ({"text": "  "}, 422, "empty_field"),
    ({"text": "가" * 501}, 422, "too_long"),
    ({"text": 5}, 400, "invalid_field"),
    ({}, 400, "missing_field"),
    ("text", 400, "invalid_body"),
])
async def test_bad_edit_is_refused_and_changes_nothing(api, services, body, status, code):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid, "original")
    before = await snapshot(services)
    r = await alice.call("PATCH", f"/api/questions/{q['id']}", body)
    assert (r.status, r.error_code) == (status, code), r
    assert await snapshot(services) == before


async def test_only_the_author_edits_or_deletes_not_even_the_host(api, services):
    host, sid = await hosted(api)
    alice, bob = await api.user(), await api.user()
    q = await alice.question(sid, "mine")
    before = await snapshot(services)
    for who in (bob, host):
        r = await who.call("PATCH", f"/api/questions/{q['id']}", {"text": "theirs"})
        assert r.status == 403 and r.error_code == "not_author", r
        r = await who.call("DELETE", f"/api/questions/{q['id']}")
        assert r.status == 403 and r.error_code == "not_author", r
    assert await snapshot(services) == before


async def test_an_answered_question_cannot_be_edited_or_deleted(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await alice.question(sid, "answered soon")
    await host.post(f"/api/questions/{q['id']}/answer")
    before = await snapshot(services)
    r = await alice.call("PATCH", f"/api/questions/{q['id']}", {"text": "changed my mind"})
    assert r.status == 409 and r.error_code == "question_answered", r
    assert r.json["error"]["message"] == "An answered question cannot be edited."
    r = await alice.call("DELETE", f"/api/questions/{q['id']}")
    assert r.status == 409 and r.error_code == "question_answered", r
    assert r.json["error"]["message"] == "An answered question cannot be deleted."
    assert await snapshot(services) == before
    # Until the host takes the answer back.
    await host.post(f"/api/questions/{q['id']}/answer", {"value": False})
    assert (await alice.call("PATCH", f"/api/questions/{q['id']}", {"text": "changed my mind"})).status == 200


async def test_deleting_removes_the_question_its_votes_and_its_pin(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    voters = [await api.user() for _ in range(3)]
    q = await alice.question(sid, "goodbye")
    keep = await alice.question(sid, "stay")
    for v in voters:
        await v.post(f"/api/questions/{q['id']}/vote")
        await v.post(f"/api/questions/{keep['id']}/vote")
    await host.post(f"/api/questions/{q['id']}/pin")
    r = await alice.call("DELETE", f"/api/questions/{q['id']}")
    assert r.status == 204 and not r.body
    assert await question_row(services, q["id"]) is None
    assert await vote_rows(services, q["id"]) == []
    assert len(await vote_rows(services, keep["id"])) == 3
    assert (await db_rows(services, "SELECT pinned_question_id FROM sessions WHERE id = ?", sid))[0][
        "pinned_question_id"] is None
    assert await listing(host, sid) == [keep["id"]]
    r = await host.get(f"/api/questions/{q['id']}")
    assert r.status == 404 and r.error_code == "question_not_found"
    # Everything about it is gone: a second delete, a vote, an edit, moderation.
    assert (await alice.call("DELETE", f"/api/questions/{q['id']}")).status == 404
    assert (await voters[0].post(f"/api/questions/{q['id']}/vote")).status == 404
    assert (await alice.call("PATCH", f"/api/questions/{q['id']}", {"text": "x"})).status == 404
    assert (await host.post(f"/api/questions/{q['id']}/pin")).status == 404
    assert (await host.get(f"/api/sessions/{sid}")).json["session"]["counts"] == {"questions": 1, "votes": 3}


# ---------------------------------------------------------------------------- unknown ids and auth


async def test_unknown_question_ids_are_404(api, services):
    host, sid = await hosted(api)
    await host.question(sid)
    before = await snapshot(services)
    for qid in ("999999", "4611686018427387905", "9999999999999999999"):
        for method, path, body in [
            ("GET", f"/api/questions/{qid}", None),
            ("PATCH", f"/api/questions/{qid}", {"text": "x"}),
            ("DELETE", f"/api/questions/{qid}", None),
            ("POST", f"/api/questions/{qid}/vote", None),
            ("DELETE", f"/api/questions/{qid}/vote", None),
            ("POST", f"/api/questions/{qid}/answer", None),
            ("POST", f"/api/questions/{qid}/pin", None),
            ("POST", f"/api/questions/{qid}/hide", None),
            ("GET", f"/api/sessions/{qid}/questions", None),
            ("POST", f"/api/sessions/{qid}/questions", {"text": "x"}),
        ]:
            r = await host.call(method, path, body)
            assert r.status == 404, (method, path, r)
            assert r.json["error"]["code"].endswith("not_found"), (method, path, r)
    assert await snapshot(services) == before


async def test_every_question_route_needs_a_token(api, services):
    host, sid = await hosted(api)
    q = await host.question(sid)
    before = await snapshot(services)
    for method, path, body in [
        ("GET", f"/api/sessions/{sid}/questions", None),
        ("POST", f"/api/sessions/{sid}/questions", {"text": "anonymous coward"}),
        ("GET", f"/api/questions/{q['id']}", None),
        ("PATCH", f"/api/questions/{q['id']}", {"text": "x"}),
        ("DELETE", f"/api/questions/{q['id']}", None),
        ("POST", f"/api/questions/{q['id']}/vote", None),
        ("DELETE", f"/api/questions/{q['id']}/vote", None),
        ("POST", f"/api/questions/{q['id']}/answer", None),
        ("POST", f"/api/questions/{q['id']}/pin", None),
        ("POST", f"/api/questions/{q['id']}/hide", None),
    ]:
        for token in (None, "made-up-token"):
            r = await api.call(method, path, body, token=token)
            assert r.status == 401 and r.error_code == "not_signed_in", (method, path, token, r)
    assert await snapshot(services) == before


async def test_a_logged_out_token_cannot_ask_or_vote(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    q = await host.question(sid)
    assert (await alice.post("/api/logout")).status == 200
    before = await snapshot(services)
    assert (await alice.post(f"/api/sessions/{sid}/questions", {"text": "hi"})).status == 401
    assert (await alice.post(f"/api/questions/{q['id']}/vote")).status == 401
    assert await snapshot(services) == before


async def test_wrong_methods_are_405(api):
    host, sid = await hosted(api)
    q = await host.question(sid)
    for method, path in [("PUT", f"/api/questions/{q['id']}"), ("GET", f"/api/questions/{q['id']}/vote"),
                         ("GET", f"/api/questions/{q['id']}/pin"), ("DELETE", f"/api/sessions/{sid}/questions")]:
        r = await host.call(method, path, {} if method == "PUT" else None)
        assert r.status == 405 and r.error_code == "method_not_allowed", (method, path, r)


# ---------------------------------------------------------------------------- races


async def test_votes_racing_a_delete_leave_no_orphan_votes(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    voters = [await api.user() for _ in range(6)]
    for _ in range(3):
        q = await alice.question(sid, "short-lived")
        results = await asyncio.gather(
            *(v.post(f"/api/questions/{q['id']}/vote") for v in voters[:3]),
            alice.call("DELETE", f"/api/questions/{q['id']}"),
            *(v.post(f"/api/questions/{q['id']}/vote") for v in voters[3:]),
        )
        assert results[3].status == 204, results[3]
        for r in results[:3] + results[4:]:
            assert r.status == 200 or (r.status == 404 and r.error_code == "question_not_found"), r
        assert await question_row(services, q["id"]) is None
        assert await vote_rows(services, q["id"]) == []


async def test_pin_racing_hide_or_answer_never_leaves_a_hidden_or_answered_question_pinned(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    for action in ("hide", "answer", "hide", "answer"):
        q = await alice.question(sid, f"race {action}")
        pin, other = await asyncio.gather(
            host.post(f"/api/questions/{q['id']}/pin"), host.post(f"/api/questions/{q['id']}/{action}"))
        assert other.status == 200, other
        assert pin.status == 200 or pin.status == 409, pin
        session = (await host.get(f"/api/sessions/{sid}")).json["session"]
        assert session["pinned_question_id"] != q["id"], (action, pin, other)
        got = (await host.get(f"/api/questions/{q['id']}")).json["question"]
        assert got["pinned"] is False


async def test_pin_racing_a_delete_never_pins_a_missing_question(api, services):
    host, sid = await hosted(api)
    alice = await api.user()
    for _ in range(3):
        q = await alice.question(sid, "about to go")
        pin, delete = await asyncio.gather(
            host.post(f"/api/questions/{q['id']}/pin"), alice.call("DELETE", f"/api/questions/{q['id']}"))
        assert delete.status == 204, delete
        assert pin.status in (200, 404), pin
        rows = await db_rows(services, "SELECT pinned_question_id FROM sessions WHERE id = ?", sid)
        assert rows[0]["pinned_question_id"] is None, (pin, delete)
