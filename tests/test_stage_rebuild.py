"""Who may speak survives the room log losing it: a Redis wipe (production) or a restart
of the one process (embedded) rebuilds the speakers and raised hands from the cold store's
room events, so the host can still revoke a speaker and a speaker's socket is not left
with publisher rights nobody can take back."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from conftest import PRODUCTION, Api, delete_redis_keys, mysql_connect
from roomclient import RoomClient
from serve import ServeProcess

pytestmark = pytest.mark.gen_test(timeout=60)


async def stage_event_stored(server: ServeProcess, sid: int, event_type: str) -> None:
    """Wait until the write-behind has put an event of this type in MySQL."""
    for _ in range(200):
        conn = mysql_connect(server.database)
        with conn.cursor() as cur:
            cur.execute("SELECT COUNT(*) FROM room_events WHERE session_id = %s AND type = %s", (sid, event_type))
            (count,) = cur.fetchone()
        conn.close()
        if count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {event_type} in the cold store")


async def test_the_stage_is_rebuilt_from_the_cold_store_after_the_room_log_lost_it(setup: str, tmp_path: Any):
    data_dir = tmp_path / "data"
    server = ServeProcess(setup, tmp=tmp_path, data_dir=data_dir)
    try:
        api = Api(AsyncHTTPClient(), server.url)
        host = await api.user(display_name="진행자")
        alice = await api.user(display_name="앨리스")
        bob = await api.user(display_name="밥")
        sid = (await host.session())["id"]
        assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
        host_room = await RoomClient.connect(server.url, sid, host.token)
        alice_room = await RoomClient.connect(server.url, sid, alice.token)
        bob_room = await RoomClient.connect(server.url, sid, bob.token)
        await bob_room.send({"type": "raise_hand"})
        await host_room.next("hand_raised")
        await host_room.send({"type": "grant_voice", "user_id": alice.id})
        await alice_room.next("voice_granted")
        for room in (host_room, alice_room, bob_room):
            room.close()

        if setup == PRODUCTION:
            await stage_event_stored(server, sid, "voice_granted")
            delete_redis_keys(server.redis_prefix)  # Redis lost everything (a restart without persistence)
        else:
            assert server.stop() == 0  # SIGTERM: the write-behind flushes, then the process is gone
            server = ServeProcess(setup, tmp=tmp_path, data_dir=data_dir, name="restarted")
            api = Api(AsyncHTTPClient(), server.url)

        alice_room = await RoomClient.connect(server.url, sid, alice.token)
        assert alice_room.welcome["speakers"] == [alice.id]
        assert alice_room.welcome["hands"] == [bob.id]
        assert alice_room.welcome["you"]["role"] == "speaker"

        host_room = await RoomClient.connect(server.url, sid, host.token)
        await host_room.send({"type": "revoke_voice", "user_id": alice.id, "client_msg_id": "rv"})
        revoked = await alice_room.next("voice_revoked", client_msg_id="rv")
        assert revoked["user"]["id"] == alice.id
        again = await RoomClient.connect(server.url, sid, alice.token)
        assert again.welcome["speakers"] == [] and again.welcome["you"]["role"] == "listener"
        for room in (alice_room, host_room, again):
            room.close()
    finally:
        server.stop()
