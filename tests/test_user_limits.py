"""Limits one user cannot multiply by opening more sockets: the room's frame rate is per
user over all their sockets (shared by every process through Redis in production), and a
user's sockets in one room are capped (the oldest is closed with 4013)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conftest import make_config
from roomclient import RoomClient

pytestmark = pytest.mark.gen_test(timeout=30)

TOO_MANY_SOCKETS = 4013


@pytest.fixture
def config(setup: str, tmp_path: Any, mysql_url: str | None) -> Any:
    # Per connection as generous as it gets, so that only the per-user limit can refuse.
    return make_config(setup, tmp_path, mysql_url, rate_per_second=1000.0, rate_burst=1000.0,
                       user_rate_per_second=10.0, user_rate_burst=20.0, user_sockets_per_room=3)


async def test_one_users_frames_are_limited_over_all_their_sockets(api, rooms):
    host = await api.user()
    flooder = await api.user(display_name="도배꾼")
    sid = (await host.session())["id"]
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    sockets = [await rooms(flooder, sid) for _ in range(3)]
    await asyncio.gather(*[s.send({"type": "chat", "text": f"{n}-{i}", "client_msg_id": f"{n}-{i}"})
                           for n, s in enumerate(sockets) for i in range(40)])
    answers = {}
    for n, s in enumerate(sockets):
        while sum(1 for k in answers if k.startswith(f"{n}-")) < 40:
            frame = await s.frame()
            if frame.get("client_msg_id", "").startswith(f"{n}-") and frame["type"] in ("chat", "error"):
                answers[frame["client_msg_id"]] = frame.get("code", "ok")
    accepted = sum(1 for a in answers.values() if a == "ok")
    assert set(answers.values()) == {"ok", "rate_limited"}
    # 120 sent at once: the burst of 20 and the few the rate allows meanwhile, not 120.
    assert 20 <= accepted < 60, accepted
    # Another user is not affected.
    other = await rooms(host, sid)
    assert (await other.chat("괜찮아요", "fine"))["text"] == "괜찮아요"


async def test_a_users_sockets_in_a_room_are_capped_and_the_oldest_goes(api, rooms):
    host = await api.user()
    sid = (await host.session())["id"]
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    tabs = [await rooms(host, sid) for _ in range(3)]
    newest = await rooms(host, sid)
    while await tabs[0].frame(timeout=5) is not None:
        pass
    assert tabs[0].conn.close_code == TOO_MANY_SOCKETS
    for tab in (*tabs[1:], newest):
        await tab.barrier()  # still open and answering
    # The cap is per room: the same user in another room is not counted against it.
    other_sid = (await host.session())["id"]
    assert (await host.post(f"/api/sessions/{other_sid}/start")).status == 200
    elsewhere = await rooms(host, other_sid)
    await elsewhere.barrier()
    await tabs[1].expect_none("error")
