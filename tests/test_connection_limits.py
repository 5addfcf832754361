"""The HTTP server's limits (ask2live/httpserver.py), through real ``ask2live serve``
processes on each set-up: timeouts, the per-address cap, running out of descriptors,
the open-files limit, and oversized bodies answered with a JSON 413.

The clients here are raw sockets, each test on loopback addresses of its own (127.0.0.x:
Linux routes all of 127/8 to lo), so that one test's sockets never count against another's
under the per-address cap.
"""

from __future__ import annotations

import http.client
import resource
import socket
import time
from typing import Iterator

import orjson
import pytest

from conftest import SETUPS
from serve import ServeProcess

# The short timeouts most tests run the server with, and how long a test waits for the
# server to act on one before it calls the connection "left open".
SHORT = 1.0
PATIENCE = 8.0
# The API's body cap (handlers/base.py API_BODY_MAX) as a client sees it.
API_BODY_MAX = 64 * 1024


def connect(server: ServeProcess, source: str, timeout: float = PATIENCE) -> socket.socket:
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", server.port))
    return sock


def closed_by_server(sock: socket.socket, within: float = PATIENCE) -> bool:
    """Whether the server closes this connection within ``within`` seconds (whatever it
    sends first is read and dropped)."""
    deadline = time.monotonic() + within
    try:
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        pass
    return False


def response(sock: socket.socket) -> tuple[int, dict, bytes]:
    r = http.client.HTTPResponse(sock)
    r.begin()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()


def get(server: ServeProcess, path: str, source: str, timeout: float = PATIENCE) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def error_code(body: bytes) -> str:
    return orjson.loads(body)["error"]["code"]


@pytest.fixture(scope="module", params=SETUPS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    """One server per set-up with one-second timeouts."""
    process = ServeProcess(request.param, "--header-timeout", str(SHORT), "--idle-timeout", str(SHORT),
                           "--body-timeout", str(SHORT), tmp=tmp_path_factory.mktemp(f"limits-{request.param}"))
    yield process
    process.stop()


# ------------------------------------------------------------------ timeouts


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server):
    sock = connect(server, "127.0.0.11")
    assert closed_by_server(sock), "a silent connection stayed open"


def test_headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout(server):
    sock = connect(server, "127.0.0.12")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    deadline = time.monotonic() + PATIENCE
    closed = False
    while not closed and time.monotonic() < deadline:
        try:
            sock.sendall(b"X")  # a header line that never ends
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        closed = closed_by_server(sock, within=0.2)
    assert closed, "a client trickling its headers kept its connection"


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(server):
    sock = connect(server, "127.0.0.13")
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = response(sock)
    assert status == 200 and headers.get("connection", "").lower() != "close"
    assert closed_by_server(sock), "an idle kept-alive connection stayed open"


def test_a_body_that_stops_arriving_is_cut_off_at_the_body_timeout(server):
    sock = connect(server, "127.0.0.14")
    sock.sendall(b"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 1000\r\n\r\n{\"username\": ")
    assert closed_by_server(sock), "a request whose body stopped arriving stayed open"


# ------------------------------------------------------------------ bodies


def test_a_declared_oversize_body_gets_a_json_413_before_any_of_it_is_sent(server):
    sock = connect(server, "127.0.0.21")
    sock.sendall(b"POST /api/users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: 5000000\r\n\r\n")
    status, headers, body = response(sock)
    assert status == 413 and error_code(body) == "body_too_large"
    assert headers["connection"].lower() == "close"
    assert headers["content-type"].startswith("application/json")


def test_a_5_mb_body_sent_whole_before_reading_gets_the_json_413_not_a_reset(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=PATIENCE, source_address=("127.0.0.22", 0))
    try:
        # http.client writes the whole body before it reads a byte of the answer.
        conn.request("POST", "/api/users", body=b" " * 5_000_000, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        status, body = r.status, r.read()
    finally:
        conn.close()
    assert status == 413 and error_code(body) == "body_too_large"


def test_a_chunked_body_past_the_cap_gets_a_json_413(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=PATIENCE, source_address=("127.0.0.23", 0))
    try:
        chunks = (b" " * 65536 for _ in range(32))  # 2 MiB, no Content-Length
        conn.request("POST", "/api/users", body=chunks, encode_chunked=True,
                     headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        r = conn.getresponse()
        status, body = r.status, r.read()
    finally:
        conn.close()
    assert status == 413 and error_code(body) == "body_too_large"


def test_a_body_at_the_cap_still_reaches_the_app(server):
    body = orjson.dumps({"username": "x", "password": "y"})
    body += b" " * (API_BODY_MAX - len(body))
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=PATIENCE, source_address=("127.0.0.24", 0))
    try:
        conn.request("POST", "/api/users", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        status, answer = r.status, r.read()
    finally:
        conn.close()
    assert status not in (400, 413), (status, answer)  # the app's own answer (a validation error)
    assert error_code(answer) != "body_too_large"


# ------------------------------------------------------------------ per-address cap


@pytest.mark.parametrize("setup", SETUPS)
def test_past_the_per_address_cap_a_new_connection_is_closed_at_once(setup, tmp_path):
    server = ServeProcess(setup, "--max-connections-per-ip", "3", tmp=tmp_path)
    try:
        # Default timeouts: a connection closed within PATIENCE was closed by the cap.
        held = [connect(server, "127.0.0.31") for _ in range(3)]
        assert get(server, "/healthz", "127.0.0.32")[0] == 200  # the server answers
        extra = connect(server, "127.0.0.31")
        assert closed_by_server(extra), "a fourth connection from one address was served"
        assert get(server, "/healthz", "127.0.0.32")[0] == 200  # another address is not affected
        for sock in held:
            sock.close()
        deadline = time.monotonic() + PATIENCE
        while True:  # the server counts the closes as it sees them
            try:
                assert get(server, "/healthz", "127.0.0.31", timeout=1)[0] == 200
                break
            except (ConnectionError, http.client.HTTPException, socket.timeout):
                assert time.monotonic() < deadline, "the address stayed capped after its connections closed"
                time.sleep(0.05)
        assert "refusing connections from 127.0.0.31" in server.output()
    finally:
        server.stop()


# ------------------------------------------------------------------ descriptors

# The open-files limit (soft and hard) the exhausted server gets, and the idle sockets the
# test opens against it: more than the limit, fewer than the limit plus the listen backlog
# (Tornado's 128), so that every connect() completes.
NOFILE = 128
IDLE_SOCKETS = 200
# What the server may log while all that happens. Tornado's own accept loop wrote a
# traceback per failed accept(): megabytes within a second.
LOG_BUDGET = 8 * 1024


@pytest.mark.parametrize("setup", SETUPS)
def test_out_of_descriptors_the_server_still_answers_and_logs_little(setup, tmp_path):
    timeout = 2.0
    server = ServeProcess(setup, "--header-timeout", str(timeout), "--idle-timeout", str(timeout),
                          "--max-connections-per-ip", "0", tmp=tmp_path)
    idle: list[socket.socket] = []
    try:
        # Both limits: the server raises its soft limit to the hard one at start.
        resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
        logged_before = len(server.output().encode())
        for _ in range(IDLE_SOCKETS):
            idle.append(connect(server, "127.0.1.1"))
        opened = time.monotonic()
        time.sleep(max(0.0, opened + timeout - time.monotonic()))
        status, body = get(server, "/healthz", "127.0.2.1", timeout=1.0)  # within a second
        assert status == 200 and orjson.loads(body)["ok"] is True
        # Every idle socket is closed in the end: none holds a descriptor for ever.
        still_open = [s for s in idle if not closed_by_server(s, within=max(0.1, opened + 6 * timeout + PATIENCE
                                                                                  - time.monotonic()))]
        assert not still_open, f"{len(still_open)} idle connections were never closed"
        assert get(server, "/healthz", "127.0.2.2", timeout=1.0)[0] == 200
        log = server.output().encode()[logged_before:]
        assert len(log) < LOG_BUDGET, f"{len(log)} bytes of log:\n{log[:3000].decode(errors='replace')}"
        assert b"Traceback" not in log
        assert b"not accepting connections: Too many open files" in log
    finally:
        for sock in idle:
            sock.close()
        code = server.stop()
    assert code == 0, server.output()[-3000:]


@pytest.mark.parametrize("setup", SETUPS)
def test_serve_raises_its_soft_open_files_limit_to_the_hard_limit(setup, tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = 1024
    if hard != resource.RLIM_INFINITY and hard <= lowered:
        pytest.skip(f"the hard open-files limit ({hard}) leaves no room below it")
    # The child inherits this process's limits: lower the soft one for the start only.
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        server = ServeProcess(setup, tmp=tmp_path)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        assert resource.prlimit(server.proc.pid, resource.RLIMIT_NOFILE) == (hard, hard)
        shown = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
        assert f"open-files limit: soft {shown} (raised from {lowered}), hard {shown}" in server.output()
    finally:
        server.stop()
