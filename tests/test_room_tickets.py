"""Opening the room without the long-lived token in the URL (proxies log URLs): the
browser sends its cookie, other clients an Authorization header or a single-use, short-lived
ticket from POST /api/sessions/{id}/ticket. A token in the URL is refused."""

from __future__ import annotations

import orjson
import pytest
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect

from roomclient import RoomClient

pytestmark = pytest.mark.gen_test(timeout=30)


def ws_url(base_url: str, path: str) -> str:
    return base_url.replace("http://", "ws://") + path


async def refusal(base_url: str, path: str, headers: dict | None = None) -> tuple[int, str]:
    with pytest.raises(HTTPClientError) as info:
        await websocket_connect(HTTPRequest(ws_url(base_url, path), headers=headers or {}))
    return info.value.code, orjson.loads(info.value.response.body)["error"]["code"]


async def live(api):
    host = await api.user(display_name="진행자")
    sid = (await host.session())["id"]
    assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
    return host, sid


async def test_a_ticket_opens_the_room_once(api, base_url):
    host, sid = await live(api)
    r = await host.post(f"/api/sessions/{sid}/ticket")
    assert r.status == 201, r
    ticket = r.json["ticket"]
    assert host.token not in ticket and r.json["expires_at"]
    conn = await websocket_connect(ws_url(base_url, f"/ws/sessions/{sid}?ticket={ticket}"))
    welcome = orjson.loads(await conn.read_message())
    assert welcome["type"] == "welcome" and welcome["you"]["user"]["id"] == host.id
    conn.close()
    # Used up.
    assert await refusal(base_url, f"/ws/sessions/{sid}?ticket={ticket}") == (401, "invalid_ticket")


async def test_a_ticket_is_for_its_session_and_its_token_only(api, base_url):
    host, sid = await live(api)
    other_sid = (await host.session())["id"]
    ticket = (await host.post(f"/api/sessions/{sid}/ticket")).json["ticket"]
    assert await refusal(base_url, f"/ws/sessions/{other_sid}?ticket={ticket}") == (401, "invalid_ticket")
    ticket = (await host.post(f"/api/sessions/{sid}/ticket")).json["ticket"]
    assert (await host.post("/api/logout")).status == 200
    assert await refusal(base_url, f"/ws/sessions/{sid}?ticket={ticket}") == (401, "invalid_ticket")
    assert await refusal(base_url, f"/ws/sessions/{sid}?ticket=made-up") == (401, "invalid_ticket")


async def test_a_ticket_needs_sign_in_and_a_session_that_exists(api):
    host, sid = await live(api)
    r = await api.call("POST", f"/api/sessions/{sid}/ticket")
    assert r.status == 401 and r.error_code == "not_signed_in"
    r = await host.post(f"/api/sessions/{sid + 999}/ticket")
    assert r.status == 404 and r.error_code == "session_not_found"


async def test_the_token_in_the_url_is_refused_and_the_header_works(api, base_url):
    host, sid = await live(api)
    assert await refusal(base_url, f"/ws/sessions/{sid}?token={host.token}") == (400, "token_in_url")
    room = await RoomClient.connect(base_url, sid, host.token)  # Authorization: Bearer
    assert room.welcome["you"]["user"]["id"] == host.id
    room.close()


async def test_a_ticket_socket_closes_when_its_token_logs_out(api, base_url):
    host, sid = await live(api)
    ticket = (await host.post(f"/api/sessions/{sid}/ticket")).json["ticket"]
    conn = await websocket_connect(ws_url(base_url, f"/ws/sessions/{sid}?ticket={ticket}"))
    await conn.read_message()
    assert (await host.post("/api/logout")).status == 200
    while await conn.read_message() is not None:
        pass
    assert conn.close_code == 4001
