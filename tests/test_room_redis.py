"""Production-only behaviour (MariaDB + Redis): several server processes in one room,
resume when the stream was trimmed or Redis lost it."""

import asyncio
from contextlib import asynccontextmanager

import orjson
import pytest
import redis.asyncio as aioredis
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from ask2live.app import make_app, running_services
from conftest import PRODUCTION, REDIS_URL, SETUPS, db_rows, make_config
from roomclient import RoomClient

pytestmark = [pytest.mark.gen_test(timeout=30),
              pytest.mark.skipif(PRODUCTION not in SETUPS, reason="ASK2LIVE_TEST_SETUPS leaves out production")]


@pytest.fixture
def setup():
    return PRODUCTION


@asynccontextmanager
async def second_server(config):
    """Another server process's worth of services on the same MySQL and Redis."""
    other = make_config(PRODUCTION, config.data_dir, config.mysql_url, redis_prefix=config.redis_prefix,
                        secret=config.secret)
    async with running_services(other) as services:
        sock, port = bind_unused_port()
        server = HTTPServer(make_app(services))
        server.add_sockets([sock])
        try:
            yield f"http://127.0.0.1:{port}", services
        finally:
            server.stop()


async def drain(services):
    for _ in range(200):
        if await services.rooms.room_log.backlog() == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("write-behind did not drain")


async def live_room(api):
    host = await api.user()
    guest = await api.user()
    session = await host.session()
    await host.post(f"/api/sessions/{session['id']}/start")
    return host, guest, session["id"]


async def test_two_processes_share_one_room_same_ids_same_order(api, base_url, config, services):
    host, guest, sid = await live_room(api)
    async with second_server(config) as (other_url, _):
        a = await RoomClient.connect(base_url, sid, host.token)
        b = await RoomClient.connect(other_url, sid, guest.token)
        # Presence crosses processes: the host is on the stage, the guest in the audience,
        # told to the host's process in the next audience event.
        assert {p["user"]["id"] for p in b.welcome["stage"]} == {host.id}
        assert b.welcome["audience"]["count"] == 2
        assert {p["user"]["id"] for p in b.welcome["audience"]["people"]} == {host.id, guest.id}
        audience = await a.next("audience", timeout=5, count=2)
        assert audience["count"] == 2 and [p["user"]["id"] for p in audience["joined"]] == [guest.id]
        for i in range(5):
            await a.send({"type": "chat", "text": f"a{i}", "client_msg_id": f"a{i}"})
            await b.send({"type": "chat", "text": f"b{i}", "client_msg_id": f"b{i}"})
        seen_a = [await a.next("chat") for _ in range(10)]
        seen_b = [await b.next("chat") for _ in range(10)]
        assert [e["id"] for e in seen_a] == [e["id"] for e in seen_b]
        assert seen_a == seen_b
        assert sorted(e["client_msg_id"] for e in seen_a) == sorted([f"a{i}" for i in range(5)] + [f"b{i}" for i in range(5)])
        b.close()
        left = await a.next("audience", timeout=5, count=1)
        assert left["count"] == 1 and [p["user"]["id"] for p in left["left"]] == [guest.id]


async def test_the_cold_store_gets_each_event_once_from_two_processes(api, base_url, config, services):
    host, guest, sid = await live_room(api)
    async with second_server(config) as (other_url, other):
        a = await RoomClient.connect(base_url, sid, host.token)
        b = await RoomClient.connect(other_url, sid, guest.token)
        acked = [await a.chat(f"a{i}", f"a{i}") for i in range(5)] + [await b.chat(f"b{i}", f"b{i}") for i in range(5)]
        await drain(services)
        await drain(other)
        rows = await db_rows(services, "SELECT id_ms, id_seq FROM room_events WHERE session_id = ? AND type = 'chat'", sid)
        assert sorted(f"{r['id_ms']}-{r['id_seq']}" for r in rows) == sorted(e["id"] for e in acked)


async def test_resume_after_the_stream_was_trimmed_comes_from_mysql(api, base_url, config, services):
    host, guest, sid = await live_room(api)
    g = await RoomClient.connect(base_url, sid, guest.token)
    h = await RoomClient.connect(base_url, sid, host.token)
    last = (await g.chat("before", "b"))["id"]
    g.close()
    missed = [await h.chat(f"missed {i}", f"m{i}") for i in range(6)]
    await drain(services)
    client = aioredis.from_url(REDIS_URL)
    stream = f"{config.redis_prefix}:{{room:{sid}}}:log"
    await client.xtrim(stream, maxlen=2, approximate=False)  # as if the room had been busy for hours
    assert await client.xlen(stream) == 2
    await client.aclose()
    back = await RoomClient.connect(base_url, sid, guest.token, since=last)
    assert back.welcome["recovered"] is True
    assert [e for e in back.welcome["history"] if e["type"] == "chat"] == missed


async def test_after_redis_lost_the_room_history_comes_from_mysql_and_the_stream_is_rewarmed(
        api, base_url, config, services):
    host, guest, sid = await live_room(api)
    h = await RoomClient.connect(base_url, sid, host.token)
    sent = [await h.chat(f"saved {i}", f"s{i}") for i in range(4)]
    await drain(services)
    client = aioredis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{config.redis_prefix}:{{room:{sid}}}:*")]
    await client.delete(*keys)  # what a Redis restart without persistence does to the room
    newcomer = await RoomClient.connect(base_url, sid, guest.token)
    assert [e for e in newcomer.welcome["history"] if e["type"] == "chat"] == sent
    stream = f"{config.redis_prefix}:{{room:{sid}}}:log"
    ids = [i.decode() for i, _ in await client.xrange(stream)]
    assert set(e["id"] for e in sent) <= set(ids)
    await client.aclose()


async def test_resume_across_a_redis_wipe_is_not_claimed_complete_while_it_settles(api, base_url, config, services):
    host, guest, sid = await live_room(api)
    g = await RoomClient.connect(base_url, sid, guest.token)
    last = (await g.chat("before", "b"))["id"]
    g.close()
    client = aioredis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{config.redis_prefix}:{{room:{sid}}}:*")]
    await client.delete(*keys)
    await client.aclose()
    back = await RoomClient.connect(base_url, sid, guest.token, since=last)
    assert back.welcome["resumed"] is True and back.welcome["recovered"] is False


async def test_unflushed_events_survive_a_redis_wipe(api, base_url, config, services):
    """Acknowledged, not yet in MySQL, and then Redis loses the stream: the appending process
    still has them and writes them itself."""
    host, guest, sid = await live_room(api)
    await services.write_behind.close()  # hold the write-behind back: nothing reaches MySQL yet
    h = await RoomClient.connect(base_url, sid, host.token)
    acked = [await h.chat(f"fragile {i}", f"f{i}") for i in range(5)]
    assert await db_rows(services, "SELECT id_ms FROM room_events WHERE session_id = ? AND type = 'chat'", sid) == []
    client = aioredis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{config.redis_prefix}:*")]
    await client.delete(*keys)
    await client.aclose()
    services.write_behind.start()
    for _ in range(100):
        rows = await db_rows(services, "SELECT id_ms, id_seq FROM room_events WHERE session_id = ? AND type = 'chat'", sid)
        if len(rows) >= len(acked):
            break
        await asyncio.sleep(0.1)
    assert sorted(f"{r['id_ms']}-{r['id_seq']}" for r in rows) == sorted(e["id"] for e in acked)
