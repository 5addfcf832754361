"""Audience scale: a room's cost grows with its audience, not with its square.

Budgets, not speeds (they hold on any machine): while N people join, an existing member
receives about one frame a second, not N; the welcome of a late joiner is no bigger than an
early one's; the cue sheet is read from the database once per room and process, not once
per join. And the audience list: the host pages through who is in the room; nobody else may."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from conftest import make_config
from roomclient import RoomClient

pytestmark = pytest.mark.gen_test(timeout=60)

JOINERS = 60


@pytest.fixture
def config(setup: str, tmp_path: Any, mysql_url: str | None) -> Any:
    # One guest account opens every joining socket (a sign-up per joiner would meet the
    # per-address sign-up throttle): no cap on one user's sockets here.
    return make_config(setup, tmp_path, mysql_url, user_sockets_per_room=0)


async def live(api: Any) -> tuple[Any, Any, int]:
    host = await api.user(display_name="진행자")
    guest = await api.user(display_name="청중")
    sid = (await host.session())["id"]
    await guest.question(sid, "미리 올린 질문")
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    return host, guest, sid


async def test_a_join_storm_costs_each_member_about_one_frame_a_second_not_one_per_joiner(api, base_url, services):
    host, guest, sid = await live(api)
    watcher = await RoomClient.connect(base_url, sid, host.token)
    await watcher.barrier()
    calls: list[str] = []
    services.store.observe_interactions(lambda name, seconds: calls.append(name))
    loop = asyncio.get_running_loop()
    started = loop.time()
    joiners = [await RoomClient.connect(base_url, sid, guest.token) for _ in range(JOINERS)]
    # Long enough for the last joiner to be told: one audience interval and a bit.
    await asyncio.sleep(1.5)
    elapsed = loop.time() - started
    during = await watcher.barrier()

    audience = [f for f in during if f.get("type") == "audience"]
    assert not [f for f in during if f.get("type") == "join"], "a listener's join is not an event of its own"
    assert audience and audience[-1]["count"] == JOINERS + 1
    # At most one audience event per second (plus the one already due), whatever N is.
    assert len(during) <= elapsed + 2, (len(during), elapsed, [f["type"] for f in during])
    # Past AUDIENCE_NAMES_MAX people the event carries the count alone.
    assert audience[-1]["named"] is False and audience[-1]["joined"] == []

    # The welcome does not grow with the room: the 60th joiner's is at most twice the 10th's
    # (the same stage, audience page and questions; a history holding a few more audience
    # events, one a second).
    sizes = [len(orjson.dumps(j.welcome)) for j in joiners]
    a, b = joiners[9].welcome, joiners[-1].welcome
    assert sizes[-1] <= sizes[9] * 2, (sizes[9], sizes[-1], {k: (len(orjson.dumps(a[k])), len(orjson.dumps(b[k]))) for k in a if k not in ("type", "session", "you", "stage")})
    assert joiners[-1].welcome["audience"]["count"] == JOINERS + 1
    assert len(joiners[-1].welcome["audience"]["people"]) == 20
    assert [q["text"] for q in joiners[-1].welcome["questions"]] == ["미리 올린 질문"]
    # The cue sheet came from the room's cache: no question query for any of these joins.
    assert "list_questions" not in calls, calls
    for j in joiners:
        j.close()


async def test_the_cached_cue_sheet_follows_the_rooms_changes(api, base_url):
    host, guest, sid = await live(api)
    h = await RoomClient.connect(base_url, sid, host.token)
    await h.send({"type": "question", "text": "방에서 올린 질문", "client_msg_id": "q"})
    asked = (await h.next("question", client_msg_id="q"))["question"]
    await h.send({"type": "vote", "question_id": asked["id"], "client_msg_id": "v"})
    await h.next("question_updated", client_msg_id="v")
    late = await RoomClient.connect(base_url, sid, guest.token)
    assert [(q["text"], q["votes"]) for q in late.welcome["questions"]] == [("방에서 올린 질문", 1), ("미리 올린 질문", 0)]
    await h.send({"type": "hide", "question_id": asked["id"], "client_msg_id": "h"})
    await h.next("question_updated", client_msg_id="h")
    later = await RoomClient.connect(base_url, sid, guest.token)
    assert [q["text"] for q in later.welcome["questions"]] == ["미리 올린 질문"]


async def test_the_host_pages_through_the_audience_and_nobody_else_may(api, base_url):
    host, guest, sid = await live(api)
    sockets = [await RoomClient.connect(base_url, sid, host.token)]
    sockets += [await RoomClient.connect(base_url, sid, guest.token) for _ in range(4)]
    seen, cursor = [], None
    while True:
        r = await host.get(f"/api/sessions/{sid}/audience?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        assert r.status == 200, r
        assert r.json["count"] == 5
        seen += [p["conn"] for p in r.json["items"]]
        cursor = r.json["next_cursor"]
        if cursor is None:
            break
    assert seen == [s.welcome["you"]["conn"] for s in sockets]  # each once, in the order they came

    r = await guest.get(f"/api/sessions/{sid}/audience")
    assert r.status == 403 and r.error_code == "not_host"
    for bad in ("o5", "a-1", "nope", "a" + "9" * 20):
        r = await host.get(f"/api/sessions/{sid}/audience?cursor={bad}")
        assert r.status == 400 and r.error_code == "invalid_cursor", (bad, r)
    r = await host.get(f"/api/sessions/{sid + 999}/audience")
    assert r.status == 404


async def test_a_small_rooms_audience_events_name_who_came_and_went(api, base_url):
    host, guest, sid = await live(api)
    h = await RoomClient.connect(base_url, sid, host.token)
    g = await RoomClient.connect(base_url, sid, guest.token)
    came = await h.next("audience", timeout=5)
    if came["count"] == 1:  # the host's own arrival, told before the guest's
        came = await h.next("audience", timeout=5)
    assert came["named"] is True and came["count"] == 2
    assert [p["conn"] for p in came["joined"]] == [g.welcome["you"]["conn"]]
    g.close()
    went = await h.next("audience", timeout=5)
    assert went["count"] == 1 and [p["conn"] for p in went["left"]] == [g.welcome["you"]["conn"]]


async def test_audience_events_do_not_crowd_the_chat_out_of_a_welcome(api, base_url, services):
    """Two minutes of people coming and going is 120 audience events: a newcomer still gets
    the chat from before them (the welcome leaves audience events out of its history)."""
    host, guest, sid = await live(api)
    h = await RoomClient.connect(base_url, sid, host.token)
    await h.chat("입장 러시 전의 말", "before")
    for n in range(120):  # as the audience loop appends them, one a second (here at once)
        await services.rooms.hub.append(sid, "audience", count=2 + n, named=False, joined=[], left=[])
    late = await RoomClient.connect(base_url, sid, guest.token)
    texts = [e.get("text") for e in late.welcome["history"]]
    assert "입장 러시 전의 말" in texts
    assert not [e for e in late.welcome["history"] if e["type"] == "audience"]
