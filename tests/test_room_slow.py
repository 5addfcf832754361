"""A client that stops reading is dropped once its outgoing buffer passes the bound,
with close code 4008, and the room goes on."""

import asyncio
import base64
import os
import re
import socket

import orjson
import pytest

from conftest import make_config
from roomclient import RoomClient

pytestmark = pytest.mark.gen_test(timeout=30)

OUTBOX = 16 * 1024
SLOW_CLOSE_CODE = 4008
# Chat lines sent between two looks at the drop counter (each look is a barrier on the
# talker's socket, which also keeps the talker itself reading).
BATCH = 20
MAX_SENT = 4000


@pytest.fixture
def config(setup, tmp_path, mysql_url):
    return make_config(setup, tmp_path, mysql_url, outbox_max_bytes=OUTBOX, rate_per_second=1000.0,
                       rate_burst=1000.0, user_rate_per_second=0)


def raw_websocket(base_url: str, path: str) -> tuple[socket.socket, bytes]:
    """A WebSocket that reads its welcome and then never reads again; a tiny receive
    window keeps the kernel from soaking up what the server sends. Returns the socket and
    the frames read after the HTTP handshake."""
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
    return sock, data.split(b"\r\n\r\n", 1)[1]


def read_until_close(sock: socket.socket, buffered: bytes) -> tuple[list[dict], int]:
    """Blocking (run it in a thread): read the server's frames up to its close frame, answer
    that as a client does, and read to the end of the connection. The text frames read
    before the close, and the close code."""
    buf = bytearray(buffered)
    texts: list[dict] = []
    while True:
        if len(buf) >= 2:
            opcode, length, start = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if length == 126:
                length, start = int.from_bytes(buf[2:4], "big"), 4
            elif length == 127:
                length, start = int.from_bytes(buf[2:10], "big"), 10
            if len(buf) >= start + length:  # a whole frame (the server's are never masked)
                payload = bytes(buf[start:start + length])
                del buf[:start + length]
                if opcode == 0x1:
                    texts.append(orjson.loads(payload))
                elif opcode == 0x8:
                    code = int.from_bytes(payload[:2], "big")
                    mask = os.urandom(4)
                    reply = code.to_bytes(2, "big")
                    sock.sendall(bytes([0x88, 0x80 | len(reply)]) + mask
                                 + bytes(b ^ mask[i % 4] for i, b in enumerate(reply)))
                    while sock.recv(65536):  # the server closes the connection once answered
                        pass
                    return texts, code
                continue
        chunk = sock.recv(1 << 20)
        assert chunk, "the server closed the connection without a close frame"
        buf += chunk


async def test_a_client_that_stops_reading_is_dropped_and_the_room_goes_on(api, base_url, services):
    host = await api.user()
    session = await host.session()
    sid = session["id"]
    await host.post(f"/api/sessions/{sid}/start")
    talker = await RoomClient.connect(base_url, sid, host.token)
    loop = asyncio.get_running_loop()
    ticket = (await host.post(f"/api/sessions/{sid}/ticket")).json["ticket"]  # a raw client: a ticket, not the token
    slow, after_handshake = await loop.run_in_executor(
        None, raw_websocket, base_url, f"/ws/sessions/{sid}?ticket={ticket}")
    slow_conn = re.search(rb'"you":\{[^}]*\}[^}]*"conn":"([0-9a-f]+)"', after_handshake).group(1).decode()

    def drops() -> float:
        return services.metrics.registry.get_sample_value("ask2live_slow_client_drops_total")

    # The longest chat line in bytes: 1000 characters of 4 bytes each. What has to be sent
    # is what the kernel soaks up for the silent client (its send buffer grows to a few MB)
    # and then the outbox bound: the bigger each event, the fewer appends that takes.
    line = "🐢" * 1000
    sent = 0
    while drops() == 0:
        assert sent < MAX_SENT, f"{sent} chat lines of 4 KB and the client that reads nothing is still there"
        for _ in range(BATCH):
            await talker.send({"type": "chat", "text": line, "client_msg_id": f"f{sent}"})
            sent += 1
        await talker.barrier()
    assert drops() == 1

    # It gets what was queued before the drop, then 4008; its answer to the close ends the
    # connection, and the room hears that it left.
    try:
        received, code = await loop.run_in_executor(None, read_until_close, slow, after_handshake)
    finally:
        slow.close()
    assert code == SLOW_CLOSE_CODE
    chats = [f for f in received if f["type"] == "chat"]
    assert 0 < len(chats) < sent  # not everything: the server stopped queueing for it
    left = await talker.next("leave", conn=slow_conn)
    assert left["user"]["id"] == host.id
    # The room goes on for everyone else.
    echo = await talker.chat("still flowing", "after")
    assert echo["text"] == "still flowing"
