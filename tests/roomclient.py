"""The tests' one live-room client: a real WebSocket to a running server.

"Nothing more arrives" is checked with a barrier, not a clock: frames on one socket are
ordered, so once the answer to a command sent now has been read, everything the server
sent this socket before it has been read too. The barrier command is ``voice_token``: any
member may send it, it changes nothing in the room, and it is always answered to the
sender alone (a token; or ``not_live`` or ``voice_not_configured``). An event the server
appended before the barrier was sent has been written to every local socket by then (local
delivery happens inside the append), so it is among the frames read before the answer.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import orjson
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect

# The answers a barrier can get besides a voice token; anything else (rate_limited, say)
# means the test sent more than it meant to.
BARRIER_ERRORS = {"not_live", "voice_not_configured"}


class RoomClient:
    """One member's WebSocket to a session's live room."""

    _barriers = itertools.count(1)

    def __init__(self, conn: WebSocketClientConnection, welcome: dict) -> None:
        self.conn = conn
        self.welcome = welcome
        self.frames: list[dict] = []  # every frame read after the welcome (barrier answers left out)
        self._reading: asyncio.Future | None = None  # a read in flight, kept across timeouts (never cancelled)

    @classmethod
    async def connect(cls, base_url: str, session_id: int, token: str | None, since: str | None = None,
                      headers: dict | None = None) -> "RoomClient":
        url = base_url.replace("http://", "ws://") + f"/ws/sessions/{session_id}"
        if since:
            url += f"?since={since}"
        headers = dict(headers or {})
        if token:  # as a non-browser client does: never in the URL
            headers["Authorization"] = f"Bearer {token}"
        conn = await websocket_connect(HTTPRequest(url, headers=headers))
        raw = await asyncio.wait_for(conn.read_message(), 5)
        assert raw is not None, f"the server closed the socket before the welcome ({conn.close_code} {conn.close_reason})"
        welcome = orjson.loads(raw)
        assert welcome["type"] == "welcome", welcome
        return cls(conn, welcome)

    @property
    def events(self) -> list[dict]:
        """The event frames (those with an ``id``) read so far."""
        return [f for f in self.frames if "id" in f]

    async def send(self, frame: dict | bytes | str) -> None:
        await self.conn.write_message(frame if isinstance(frame, (bytes, str)) else orjson.dumps(frame))

    async def _read(self, timeout: float) -> dict | None:
        """The next frame, None once the server closed the socket; TimeoutError if none
        arrives within ``timeout`` (the read stays in flight for the next call)."""
        if self._reading is None:
            self._reading = asyncio.ensure_future(self.conn.read_message())
        done, _ = await asyncio.wait({self._reading}, timeout=max(timeout, 0))
        if not done:
            raise asyncio.TimeoutError(f"no frame within {timeout:.2f} s")
        raw, self._reading = self._reading.result(), None
        return None if raw is None else orjson.loads(raw)

    async def frame(self, timeout: float = 3.0) -> dict | None:
        """The next frame (None when the server closed the connection)."""
        frame = await self._read(timeout)
        if frame is not None:
            self.frames.append(frame)
        return frame

    async def next(self, type: str, timeout: float = 3.0, **match: Any) -> dict:
        """Read until a frame of this type (with these field values) arrives. An error frame
        while waiting for something else fails at once, with its code."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                frame = await self.frame(deadline - loop.time())
            except asyncio.TimeoutError:
                raise AssertionError(f"no {type!r} frame {match or ''} within {timeout} s; read: "
                                     f"{[f.get('type') for f in self.frames]}") from None
            assert frame is not None, (f"the server closed the socket ({self.conn.close_code} "
                                       f"{self.conn.close_reason}) while waiting for {type!r}")
            if frame.get("type") == type and all(frame.get(k) == v for k, v in match.items()):
                return frame
            if frame.get("type") == "error" and type != "error":
                raise AssertionError(f"error frame while waiting for {type!r}: {frame}")

    async def error(self, code: str, client_msg_id: str | None = None) -> dict:
        frame = await self.next("error")
        assert frame["code"] == code, frame
        assert frame["client_msg_id"] == client_msg_id, frame
        return frame

    async def barrier(self, timeout: float = 3.0) -> list[dict]:
        """Send a command whose answer is known and read up to that answer: the frames read
        on the way, everything the server sent before it that was not read yet."""
        client_msg_id = f"barrier-{next(self._barriers)}"
        await self.send({"type": "voice_token", "client_msg_id": client_msg_id})
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        before: list[dict] = []
        while True:
            frame = await self._read(deadline - loop.time())
            assert frame is not None, f"the server closed the socket ({self.conn.close_code} {self.conn.close_reason})"
            if frame.get("client_msg_id") == client_msg_id and frame.get("type") in ("voice_token", "error"):
                assert frame["type"] == "voice_token" or frame["code"] in BARRIER_ERRORS, frame
                return before
            self.frames.append(frame)
            before.append(frame)

    async def expect_none(self, *types: str) -> None:
        """No frame of these types is waiting: none arrives before a barrier's answer."""
        unexpected = [f for f in await self.barrier() if f.get("type") in types]
        assert not unexpected, f"unexpected frames: {unexpected}"

    async def chat(self, text: str, client_msg_id: str) -> dict:
        """Send a chat line and wait for its echo: the acknowledgement."""
        await self.send({"type": "chat", "text": text, "client_msg_id": client_msg_id})
        return await self.next("chat", client_msg_id=client_msg_id)

    def close(self) -> None:
        self.conn.close()


async def live_session(api: Any, rooms: Any, guests: int = 1) -> tuple[int, list, list[RoomClient]]:
    """A started session, its host and ``guests`` guests, all in the room (``rooms`` is the
    conftest fixture)."""
    host = await api.user(display_name="Host")
    sid = (await host.session())["id"]
    r = await host.post(f"/api/sessions/{sid}/start")
    assert r.status == 200, r
    people = [host] + [await api.user(display_name=f"Guest {i}") for i in range(guests)]
    sockets = [await rooms(p, sid) for p in people]
    return sid, people, sockets
