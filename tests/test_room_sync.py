"""--persistence sync, the old design kept for the benchmark: every event is in the cold
store before anyone sees it, and concurrent senders lose nothing."""

import asyncio

import pytest

from conftest import db_rows, make_config
from roomclient import RoomClient

pytestmark = pytest.mark.gen_test(timeout=30)


@pytest.fixture
def config(setup, tmp_path, mysql_url):
    # One user on eleven sockets, as fast as they go: no per-user limits here.
    return make_config(setup, tmp_path, mysql_url, persistence="sync", user_rate_per_second=0,
                       user_sockets_per_room=0)


async def test_concurrent_chat_is_stored_before_it_is_broadcast_and_none_is_lost(api, base_url, services):
    host = await api.user()
    sid = (await host.session())["id"]
    await host.post(f"/api/sessions/{sid}/start")
    listener = await RoomClient.connect(base_url, sid, host.token)
    senders = [await RoomClient.connect(base_url, sid, host.token) for _ in range(10)]
    sending = asyncio.gather(*[s.send({"type": "chat", "text": f"{n}-{i}", "client_msg_id": f"{n}-{i}"})
                               for n, s in enumerate(senders) for i in range(10)])
    got = set()
    while len(got) < 100:
        frame = await listener.frame()
        assert frame is not None and frame["type"] != "error", frame
        if "id" not in frame:
            continue
        # Looked up as the frame arrives, before the next one is read: the row is there
        # already (on write-behind it would usually not be, for up to a flush interval).
        ms, seq = frame["id"].split("-")
        rows = await db_rows(services, "SELECT type FROM room_events WHERE session_id = ? AND id_ms = ? AND id_seq = ?",
                             sid, int(ms), int(seq))
        assert rows == [{"type": frame["type"]}], f"{frame['type']} {frame['id']} was broadcast before it was stored"
        if frame["type"] == "chat":
            got.add(frame["client_msg_id"])
    await sending
    assert got == {f"{n}-{i}" for n in range(10) for i in range(10)}
    rows = await db_rows(services, "SELECT COUNT(*) AS n FROM room_events WHERE session_id = ? AND type = 'chat'", sid)
    assert rows[0]["n"] == 100
