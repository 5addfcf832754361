"""Logging out closes the room sockets opened with that token, on every process of the
deployment (told through the room log), with the named close code 4001; the same user's
other tokens keep theirs."""

from __future__ import annotations

from typing import Any

import pytest
from tornado.httpclient import AsyncHTTPClient

from conftest import PRODUCTION, SETUPS, Api
from roomclient import RoomClient
from serve import ServeProcess

pytestmark = pytest.mark.gen_test(timeout=40)

LOGGED_OUT = 4001


async def closed(room: RoomClient) -> int:
    """Read until the server closes the socket; its close code."""
    while await room.frame(timeout=5) is not None:
        pass
    return room.conn.close_code


async def second_login(api: Api, account: Any) -> str:
    r = await api.call("POST", "/api/login", {"username": account.user["username"], "password": "correct horse battery"})
    assert r.status == 200, r
    return r.json["token"]


async def test_logging_out_closes_that_tokens_sockets_only(api, rooms):
    host = await api.user(display_name="진행자")
    sid = (await host.session())["id"]
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    other_token = await second_login(api, host)
    doomed = [await rooms(host, sid), await rooms(host, sid)]
    keeper = await RoomClient.connect(api.base_url, sid, other_token)

    assert (await host.post("/api/logout")).status == 200
    assert [await closed(room) for room in doomed] == [LOGGED_OUT, LOGGED_OUT]
    # The other token's socket is still in the room, and hears the two leave.
    await keeper.next("leave")
    echo = await keeper.chat("아직 여기 있어요", "still")
    assert echo["text"] == "아직 여기 있어요"
    keeper.close()


@pytest.mark.skipif(PRODUCTION not in SETUPS, reason="several processes need the production set-up")
async def test_logging_out_on_one_process_closes_the_socket_on_another(tmp_path):
    first = ServeProcess(PRODUCTION, tmp=tmp_path, name="first")
    second = ServeProcess(PRODUCTION, tmp=tmp_path, name="second", like=first)
    try:
        api = Api(AsyncHTTPClient(), first.url)
        host = await api.user()
        sid = (await host.session())["id"]
        assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
        room = await RoomClient.connect(second.url, sid, host.token)
        assert (await host.post("/api/logout")).status == 200  # on the first process
        assert await closed(room) == LOGGED_OUT
        # The second process had the token's user cached (the socket's upgrade asked): the
        # notice that closed the socket made it forget that too.
        r = await Api(AsyncHTTPClient(), second.url).call("GET", "/api/me", token=host.token)
        assert r.status == 401, r
    finally:
        second.stop()
        first.stop()


async def test_a_tokens_user_is_looked_up_once_per_process_not_per_request(api, services):
    """A budget: a page visit makes several requests with one token; the store is asked once."""
    user = await api.user()
    calls: list[str] = []
    services.store.observe_interactions(lambda name, seconds: calls.append(name))
    for _ in range(5):
        assert (await user.get("/api/me")).status == 200
    assert calls.count("get_token_user") <= 1, calls
    assert (await user.post("/api/logout")).status == 200
    assert (await user.get("/api/me")).status == 401  # forgotten at once on this process
