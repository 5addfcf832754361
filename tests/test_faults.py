"""Faults, for real: two `ask2live serve` processes on a private Redis and a MariaDB database
of this test's own; a steady stream of chat; `kill -9` of one server, then a restart of
Redis that wipes its memory. Every acknowledged message must end up in MySQL exactly once."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import orjson
import pytest
from tornado.httpclient import AsyncHTTPClient
from tornado.websocket import WebSocketClosedError

from conftest import PRODUCTION, SETUPS, mysql_connect
from roomclient import RoomClient
from serve import ChildProcess, ServeProcess, free_port

pytestmark = [pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
              pytest.mark.skipif(PRODUCTION not in SETUPS, reason="ASK2LIVE_TEST_SETUPS leaves out production")]

SEND_INTERVAL = 0.25  # below the per-connection rate limit
FLUSH_INTERVAL_MS = 2000


class Processes:
    """A private Redis, and `ask2live serve` processes on it and on a MariaDB database of
    their own (the first server's; the others share it)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.redis_port = free_port()
        self.redis: ChildProcess | None = None
        self.first: ServeProcess | None = None
        self.servers: dict[str, ServeProcess] = {}

    def start_redis(self) -> None:
        self.redis = ChildProcess(["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"], self.tmp / "redis.log")
        self.redis.wait_listening(self.redis_port)

    def kill_redis(self) -> None:
        self.redis.kill()  # gone with everything it held: no persistence

    def start_server(self, name: str, port: int) -> None:
        # A slow write-behind, so that a fault always finds acknowledged, unflushed messages.
        server = ServeProcess(PRODUCTION, "--flush-interval-ms", str(FLUSH_INTERVAL_MS), tmp=self.tmp, name=name,
                              port=port, redis_url=f"redis://127.0.0.1:{self.redis_port}/0", like=self.first)
        self.first = self.first or server
        self.servers[name] = server

    def kill(self, name: str) -> None:
        self.servers.pop(name).kill()  # kill -9

    def stop_all(self) -> None:
        for server in self.servers.values():
            if server is not self.first:
                server.stop()
        if self.first is not None:
            self.first.stop()  # the last: it drops the database (and its keys, if Redis is up)
        if self.redis is not None:
            self.redis.kill()

    def chat_rows(self) -> list[str]:
        conn = mysql_connect(self.first.database)
        with conn.cursor() as cur:
            cur.execute("SELECT body FROM room_events WHERE type = 'chat'")
            rows = [orjson.loads(r[0])["client_msg_id"] for r in cur.fetchall()]
        conn.close()
        return rows


async def call(base: str, method: str, path: str, body=None, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = await AsyncHTTPClient().fetch(base + path, method=method, headers=headers, raise_error=False,
                                      body=orjson.dumps(body) if body is not None else (b"" if method == "POST" else None))
    return r.code, orjson.loads(r.body) if r.body else None


async def sign_in(base: str, name: str) -> str:
    await call(base, "POST", "/api/users", {"username": name, "password": "password-123", "display_name": name})
    return (await call(base, "POST", "/api/login", {"username": name, "password": "password-123"}))[1]["token"]


class Sender:
    """One user sending chat at a steady pace to one server, reconnecting (with since) when
    the connection drops, and remembering which messages were acknowledged (echoed)."""

    def __init__(self, name: str, url_of, sid: int, token: str) -> None:
        self.name, self.url_of, self.sid, self.token = name, url_of, sid, token
        self.acked: set[str] = set()
        self.sent = 0
        self.running = True

    async def run(self) -> None:
        position = None
        while self.running:
            try:
                client = await RoomClient.connect(self.url_of(), self.sid, self.token, since=position)
            except Exception:
                await asyncio.sleep(0.2)
                continue
            reader = asyncio.ensure_future(self._read(client))
            try:
                while self.running and not reader.done():
                    self.sent += 1
                    await client.send({"type": "chat", "text": f"{self.name} {self.sent}",
                                       "client_msg_id": f"{self.name}-{self.sent}"})
                    await asyncio.sleep(SEND_INTERVAL)
            except WebSocketClosedError:
                pass
            await asyncio.sleep(0.3)  # let late echoes in
            client.close()
            position = await reader

    async def _read(self, client: RoomClient):
        position = client.welcome["position"]
        while True:
            try:
                frame = await client.frame(timeout=30)
            except Exception:
                return position
            if frame is None:
                return position
            if "id" in frame:
                position = frame["id"]
            if frame["type"] == "chat" and str(frame.get("client_msg_id", "")).startswith(self.name + "-"):
                self.acked.add(frame["client_msg_id"])


async def wait_for_rows(procs: Processes, wanted: set[str], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    rows: list[str] = []
    while time.monotonic() < deadline:
        rows = procs.chat_rows()
        if wanted <= set(rows):
            break
        await asyncio.sleep(0.25)
    return rows


@pytest.mark.gen_test(timeout=120)
async def test_no_acknowledged_message_is_lost_to_a_killed_server_or_a_wiped_redis(tmp_path):
    procs = Processes(tmp_path)
    port_a, port_b = free_port(), free_port()
    try:
        procs.start_redis()
        procs.start_server("a", port_a)
        procs.start_server("b", port_b)
        url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
        host, guest = await sign_in(url_a, "host"), await sign_in(url_a, "guest")
        _, created = await call(url_a, "POST", "/api/sessions", {"title": "faults", "starts_at": "2099-01-01T00:00:00Z"}, host)
        sid = created["session"]["id"]
        await call(url_a, "POST", f"/api/sessions/{sid}/start", None, host)
        senders = [Sender("on-a", lambda: url_a, sid, host), Sender("on-b", lambda: url_b, sid, guest)]
        tasks = [asyncio.ensure_future(s.run()) for s in senders]

        await asyncio.sleep(2)
        procs.kill("a")  # kill -9: whatever it had read but not flushed is pending in Redis
        await asyncio.sleep(1)
        procs.start_server("a", port_a)  # the same host:port, so the same consumer: it re-reads its pending list
        await asyncio.sleep(2)

        # Separately: everything acknowledged so far reaches MySQL, then Redis restarts empty.
        before_wipe = set().union(*(s.acked for s in senders))
        rows = await wait_for_rows(procs, before_wipe, 30)
        assert before_wipe <= set(rows), f"lost to kill -9: {sorted(before_wipe - set(rows))[:10]}"
        await asyncio.sleep(1)
        procs.kill_redis()
        procs.start_redis()
        await asyncio.sleep(3)

        for s in senders:
            s.running = False
        await asyncio.gather(*tasks)
        acked = set().union(*(s.acked for s in senders))
        rows = await wait_for_rows(procs, acked, 30)
        missing = acked - set(rows)
        duplicated = {m for m in rows if rows.count(m) > 1}
        print(f"\nsent {sum(s.sent for s in senders)}, acknowledged {len(acked)}, in MySQL {len(rows)}")
        assert not missing, f"acknowledged but lost: {sorted(missing)[:10]}"
        assert not duplicated, f"stored twice: {sorted(duplicated)[:10]}"
        assert len(acked) > 20  # the run really exercised the faults
    finally:
        procs.stop_all()
