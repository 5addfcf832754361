"""A client that stops reading is dropped once its outgoing buffer passes the bound,
with close code 4008, and the room goes on."""

import asyncio
import base64
import os
import re
import socket

import pytest

from conftest import make_config
from roomclient import RoomClient

pytestmark = pytest.mark.gen_test(timeout=30)

OUTBOX = 16 * 1024


@pytest.fixture
def config(engine, tmp_path, mysql_url):
    return make_config(engine, tmp_path, mysql_url, outbox_max_bytes=OUTBOX, rate_per_second=1000.0,
                       rate_burst=1000.0)


def raw_websocket(base_url: str, path: str) -> tuple[socket.socket, bytes]:
    """A WebSocket that reads its welcome and then never reads again; a tiny receive
    window keeps the kernel from soaking up what the server sends."""
    host, port = base_url.split("://")[1].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    sock.settimeout(5)
    data = b""
    while b'"type":"welcome"' not in data or not data.rstrip().endswith(b"}"):
        data += sock.recv(65536)
    return sock, data


async def test_a_client_that_stops_reading_is_dropped_and_the_room_goes_on(api, base_url):
    host = await api.user()
    session = await host.session()
    sid = session["id"]
    await host.post(f"/api/sessions/{sid}/start")
    talker = await RoomClient.connect(base_url, sid, host.token)
    slow, welcome = await asyncio.get_running_loop().run_in_executor(
        None, raw_websocket, base_url, f"/ws/sessions/{sid}?token={host.token}")
    slow_conn = re.search(rb'"you":\{[^}]*\}[^}]*"conn":"([0-9a-f]+)"', welcome).group(1).decode()
    line = "느린 클라이언트 " * 100  # ~2.4 KB per event
    left = None
    for i in range(4000):
        await talker.send({"type": "chat", "text": line[:1000], "client_msg_id": f"f{i}"})
        if i % 50 == 49:
            try:
                left = await talker.next("leave", timeout=0.2, conn=slow_conn)
                break
            except asyncio.TimeoutError:
                pass
    if left is None:
        left = await talker.next("leave", timeout=15, conn=slow_conn)
    # The room goes on for everyone else.
    echo = await talker.chat("still flowing", "after")
    assert echo["text"] == "still flowing"
    # The server closed it (a client that reads again within Tornado's close timeout would
    # find the queued events and then a 4008 close frame; this one did not, and was aborted).
    slow.settimeout(5)
    data = b""
    while True:
        chunk = slow.recv(1 << 20)
        if not chunk:
            break
        data += chunk
    slow.close()
    sent_bytes = (i + 1) * len(line[:1000].encode())
    assert len(data) < sent_bytes  # not everything: the server stopped queueing for it
