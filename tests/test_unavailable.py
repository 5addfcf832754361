"""A cold store that cannot be reached answers with one backend-neutral error, 503
``store_unavailable``, on the socket and over REST alike (as an unreachable room log
answers ``room_unavailable``), and changes nothing.

The outage is real: on the production set-up the server reaches MariaDB through a proxy
the test cuts; on the embedded one another connection holds the SQLite file's write lock
past the server's busy timeout."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import orjson
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from ask2live.store import engines
from conftest import PRODUCTION, make_config
from faultproxy import FaultProxy

pytestmark = pytest.mark.gen_test(timeout=40)


@pytest.fixture
def mysql_proxy(io_loop: Any, setup: str) -> Any:
    if setup != PRODUCTION:
        yield None
        return
    proxy = io_loop.run_sync(FaultProxy("127.0.0.1", 3306).start)
    yield proxy
    io_loop.run_sync(proxy.close)


@pytest.fixture
def config(setup: str, tmp_path: Any, mysql_url: str | None, mysql_proxy: FaultProxy | None, monkeypatch: Any) -> Any:
    # Not five seconds of waiting on the held lock for each request of the test.
    monkeypatch.setattr(engines, "SQLITE_BUSY_TIMEOUT_MS", 300)
    if mysql_proxy is not None:
        mysql_url = mysql_url.replace(":3306/", f":{mysql_proxy.port}/")
    return make_config(setup, tmp_path, mysql_url)


@pytest.fixture
def store_outage(config: Any, mysql_proxy: FaultProxy | None) -> Any:
    @contextlib.contextmanager
    def outage() -> Any:
        if mysql_proxy is not None:
            mysql_proxy.cut_off()
            try:
                yield
            finally:
                mysql_proxy.restore()
            return
        blocker = sqlite3.connect(str(config.data_dir / "ask2live.sqlite3"), isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

    return outage


async def test_a_store_outage_answers_store_unavailable_on_the_socket_and_over_rest(api, rooms, store_outage):
    host = await api.user(display_name="진행자")
    guest = await api.user(display_name="참가자")
    sid = (await host.session())["id"]
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    qid = (await guest.question(sid, "서버가 멈추면 어떻게 되나요?"))["id"]
    room = await rooms(guest, sid)

    with store_outage():
        await room.send({"type": "vote", "question_id": qid, "client_msg_id": "v1"})
        error = await room.next("error", timeout=15)
        assert (error["code"], error["client_msg_id"]) == ("store_unavailable", "v1")
        r = await guest.post(f"/api/questions/{qid}/vote")
        assert r.status == 503, r
        assert r.error_code == "store_unavailable"

    # Nothing was counted during the outage: the first vote after it is the first one.
    await room.send({"type": "vote", "question_id": qid, "client_msg_id": "v2"})
    event = await room.next("question_updated", timeout=15, client_msg_id="v2")
    assert event["question"]["votes"] == 1


async def test_a_room_upgrade_during_a_store_outage_is_503_store_unavailable(api, base_url, store_outage):
    host = await api.user()
    sid = (await host.session())["id"]
    with store_outage():
        with pytest.raises(HTTPClientError) as info:
            await websocket_connect(HTTPRequest(base_url.replace("http://", "ws://") + f"/ws/sessions/{sid}",
                                                headers={"Authorization": f"Bearer {host.token}"}))
    assert info.value.code == 503
    assert orjson.loads(info.value.response.body)["error"]["code"] == "store_unavailable"
