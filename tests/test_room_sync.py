"""--persistence sync, the old design kept for the benchmark: every event is in the cold
store before anyone sees it, and concurrent senders lose nothing."""

import asyncio

import pytest

from conftest import db_rows, make_config
from roomclient import RoomClient

pytestmark = pytest.mark.gen_test(timeout=30)


@pytest.fixture
def config(engine, tmp_path, mysql_url):
    return make_config(engine, tmp_path, mysql_url, persistence="sync")


async def test_concurrent_chat_is_stored_before_it_is_broadcast_and_none_is_lost(api, base_url, services):
    host = await api.user()
    sid = (await host.session())["id"]
    await host.post(f"/api/sessions/{sid}/start")
    listener = await RoomClient.connect(base_url, sid, host.token)
    senders = [await RoomClient.connect(base_url, sid, host.token) for _ in range(10)]
    await asyncio.gather(*[s.send({"type": "chat", "text": f"{n}-{i}", "client_msg_id": f"{n}-{i}"})
                           for n, s in enumerate(senders) for i in range(10)])
    got = {(await listener.next("chat"))["client_msg_id"] for _ in range(100)}
    assert got == {f"{n}-{i}" for n in range(10) for i in range(10)}
    # No write-behind here: the rows are there already.
    rows = await db_rows(services, "SELECT COUNT(*) AS n FROM room_events WHERE session_id = ? AND type = 'chat'", sid)
    assert rows[0]["n"] == 100
