"""REST changes while the room log (Redis) is down or frozen: the change is committed and
the call answers with its real outcome (never an error after the commit); the room hears
of it once Redis is back (the announcement waits in the cold store's outbox).

The outage is real: the server reaches Redis through a proxy the test cuts or freezes."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import PRODUCTION, REDIS_URL, SETUPS, make_config
from faultproxy import FaultProxy

pytestmark = [pytest.mark.gen_test(timeout=40),
              pytest.mark.skipif(PRODUCTION not in SETUPS, reason="the room log is Redis only in production")]


@pytest.fixture
def setup() -> str:
    return PRODUCTION


@pytest.fixture
def redis_proxy(io_loop: Any) -> Any:
    host, port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    proxy = io_loop.run_sync(FaultProxy(host, int(port)).start)
    yield proxy
    io_loop.run_sync(proxy.close)


@pytest.fixture
def config(setup: str, tmp_path: Any, mysql_url: str, redis_proxy: FaultProxy) -> Any:
    return make_config(setup, tmp_path, mysql_url, redis_url=f"redis://127.0.0.1:{redis_proxy.port}/0")


async def heard(room: Any, *wanted: tuple[str, str]) -> None:
    """Wait until the room has told this client each (type, text-or-status) wanted, from
    its welcome's history or live."""
    def seen(frames: list[dict]) -> set[tuple[str, str]]:
        found = set()
        for f in frames:
            if f.get("type") == "session_started":
                found.add(("session_started", f["session"]["status"]))
            elif f.get("type") == "question":
                found.add(("question", f["question"]["text"]))
            elif f.get("type") == "question_updated":
                found.add((f["action"], f["question"].get("text", "")))
        return found

    frames = list(room.welcome["history"])
    while not set(wanted) <= seen(frames + room.frames):
        await room.frame(timeout=10)


@pytest.mark.parametrize("fault", ["cut", "freeze"])
async def test_rest_changes_during_a_redis_outage_succeed_and_reach_the_room_after_it(api, rooms, redis_proxy, fault):
    host = await api.user(display_name="진행자")
    guest = await api.user(display_name="손님")
    sid = (await host.session())["id"]
    early = await guest.question(sid, "미리 보낸 질문")

    redis_proxy.cut_off() if fault == "cut" else redis_proxy.freeze()
    try:
        r = await host.post(f"/api/sessions/{sid}/start")
        assert r.status == 200 and r.json["session"]["status"] == "live", r
        r = await guest.post(f"/api/sessions/{sid}/questions", {"text": "장애 중에 보낸 질문"})
        assert r.status == 201, r
        r = await guest.post(f"/api/questions/{early['id']}/vote")
        assert r.status == 200 and r.json["question"]["votes"] == 1, r
    finally:
        redis_proxy.restore()

    # Nothing was lost: the session is live, and the room is told of all three.
    assert (await guest.get(f"/api/sessions/{sid}")).json["session"]["status"] == "live"
    room = await rooms(guest, sid)
    await heard(room, ("session_started", "live"), ("question", "장애 중에 보낸 질문"), ("vote", "미리 보낸 질문"))


async def test_announcements_kept_in_the_outbox_keep_their_order(api, rooms, redis_proxy):
    """A session started during an outage and ended just after it: the room hears the start
    first (the end queues behind it instead of overtaking it), and the session stays ended."""
    host = await api.user(display_name="진행자")
    guest = await api.user(display_name="손님")
    sid = (await host.session())["id"]
    redis_proxy.cut_off()
    try:
        assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    finally:
        redis_proxy.restore()
    assert (await host.post(f"/api/sessions/{sid}/end")).status == 200
    room = await rooms(guest, sid)
    frames = list(room.welcome["history"])
    while [f["type"] for f in frames if f["type"].startswith("session_")] != ["session_started", "session_ended"]:
        assert len([f for f in frames if f["type"].startswith("session_")]) < 2, frames
        frames.append(await room.frame(timeout=10))
    # The room is ended for everyone: chat is refused.
    await room.send({"type": "chat", "text": "아직 열려 있나요?", "client_msg_id": "late"})
    await room.error("not_live", "late")
