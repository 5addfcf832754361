"""A live-room client for tests: a real WebSocket to a running server."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from tornado.httpclient import HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect


class RoomClient:
    def __init__(self, conn: WebSocketClientConnection, welcome: dict) -> None:
        self.conn = conn
        self.welcome = welcome
        self.seen: list[dict] = []  # every event frame (with an "id") read so far

    @classmethod
    async def connect(cls, base_url: str, session_id: int, token: str | None, since: str | None = None,
                      headers: dict | None = None) -> "RoomClient":
        url = base_url.replace("http://", "ws://") + f"/ws/sessions/{session_id}"
        query = []
        if token:
            query.append(f"token={token}")
        if since:
            query.append(f"since={since}")
        if query:
            url += "?" + "&".join(query)
        conn = await websocket_connect(HTTPRequest(url, headers=headers or {}))
        welcome = orjson.loads(await asyncio.wait_for(conn.read_message(), 5))
        assert welcome["type"] == "welcome", welcome
        return cls(conn, welcome)

    async def send(self, frame: dict | bytes | str) -> None:
        await self.conn.write_message(frame if isinstance(frame, (bytes, str)) else orjson.dumps(frame))

    async def frame(self, timeout: float = 3.0) -> dict | None:
        """The next frame (None when the server closed the connection)."""
        raw = await asyncio.wait_for(self.conn.read_message(), timeout)
        if raw is None:
            return None
        frame = orjson.loads(raw)
        if "id" in frame:
            self.seen.append(frame)
        return frame

    async def next(self, event_type: str, timeout: float = 3.0, **match: Any) -> dict:
        """Read until a frame of this type (and these field values) arrives."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            frame = await self.frame(max(left, 0.01))
            assert frame is not None, f"connection closed while waiting for {event_type}"
            if frame["type"] == event_type and all(frame.get(k) == v for k, v in match.items()):
                return frame

    async def expect_none(self, event_type: str, within: float = 0.3) -> None:
        try:
            while True:
                frame = await self.frame(within)
                assert frame is None or frame["type"] != event_type, f"unexpected {frame}"
                if frame is None:
                    return
        except asyncio.TimeoutError:
            return

    async def chat(self, text: str, client_msg_id: str) -> dict:
        """Send a chat line and wait for its echo: the acknowledgement."""
        await self.send({"type": "chat", "text": text, "client_msg_id": client_msg_id})
        return await self.next("chat", client_msg_id=client_msg_id)

    def close(self) -> None:
        self.conn.close()
