"""``ask2live serve --workers N``: N processes on one port, sharing MySQL and Redis, started,
restarted and stopped by one parent (ask2live/workers.py); refused on the embedded set-up.
Everything through the command and HTTP (tests/serve.py)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest
from tornado.httpclient import AsyncHTTPClient

from conftest import PRODUCTION, SETUPS, Api
from roomclient import RoomClient
from serve import START_SECONDS, ServeProcess, clean_env

production_only = pytest.mark.skipif(PRODUCTION not in SETUPS, reason="several workers need the production set-up")


def children(pid: int) -> set[int]:
    """The processes ``pid`` has forked and not yet reaped (Linux)."""
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return {int(p) for p in f.read().split()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def answering_pids(server: ServeProcess, count: int, timeout: float = 10.0) -> set[int]:
    """The pids /healthz names, over fresh connections, until ``count`` differ."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(seen) < count and time.monotonic() < deadline:
        with urllib.request.urlopen(server.url + "/healthz", timeout=2) as r:  # Connection: close
            seen.add(orjson.loads(r.read())["pid"])
    return seen


def serving_pid(room: RoomClient, server_port: int, pids: set[int]) -> int:
    """Which of ``pids`` holds the server end of ``room``'s socket: the /proc/net/tcp entry
    from the server's port to the client's, then the process with that socket inode."""
    client_port = room.conn.stream.socket.getsockname()[1]
    with open("/proc/net/tcp") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    inodes = {row[9] for row in rows if int(row[1].split(":")[1], 16) == server_port
              and int(row[2].split(":")[1], 16) == client_port}
    assert len(inodes) == 1, inodes
    target = f"socket:[{inodes.pop()}]"
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                pass
    raise AssertionError(f"no worker holds {target}")


@production_only
def test_two_workers_answer_on_one_port_from_two_processes(tmp_path):
    server = ServeProcess(PRODUCTION, "--workers", "2", tmp=tmp_path)
    try:
        workers = children(server.proc.pid)
        assert len(workers) == 2 and server.proc.pid not in workers
        assert answering_pids(server, 2) == workers
        log = server.output()
        assert "worker 0 of 2" in log and "worker 1 of 2" in log
    finally:
        server.stop()


@production_only
def test_sigterm_to_the_parent_stops_every_worker_cleanly(tmp_path):
    server = ServeProcess(PRODUCTION, "--workers", "2", tmp=tmp_path)
    workers = children(server.proc.pid)
    server.wait_until(lambda: server.output().count("ask2live listening") == 2, "both workers listening")
    assert server.stop() == 0, server.output()
    assert not any(alive(pid) for pid in workers)
    log = server.output()
    assert log.count("shutting down") == 2, log  # each worker's own clean shutdown
    assert log.count(") exited\n") == 2, log


@production_only
def test_a_worker_that_dies_is_restarted(tmp_path):
    server = ServeProcess(PRODUCTION, "--workers", "2", tmp=tmp_path)
    try:
        workers = children(server.proc.pid)
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        server.wait_until(lambda: len(children(server.proc.pid) - {victim}) == 2, "a restarted worker")
        replacement = children(server.proc.pid) - workers
        assert len(replacement) == 1
        assert answering_pids(server, 2) == (workers - {victim}) | replacement
        assert f"(pid {victim}) was killed by signal 9; restarting it" in server.output()
    finally:
        assert server.stop() == 0, server.output()


@production_only
def test_the_mysql_pool_size_flag_reaches_each_worker(tmp_path):
    server = ServeProcess(PRODUCTION, "--workers", "2", "--mysql-pool-size", "3", tmp=tmp_path)
    try:
        server.wait_until(lambda: server.output().count("pool of 3 connections") == 2, "both workers' start lines")
    finally:
        server.stop()


@production_only
@pytest.mark.gen_test(timeout=60)
async def test_a_chat_line_sent_on_one_worker_reaches_a_socket_on_the_other(tmp_path):
    server = ServeProcess(PRODUCTION, "--workers", "2", tmp=tmp_path)
    try:
        workers = children(server.proc.pid)
        api = Api(AsyncHTTPClient(), server.url)
        host = await api.user(display_name="Host")
        sid = (await host.session())["id"]
        assert (await host.post(f"/api/sessions/{sid}/start")).status == 200
        listener = await RoomClient.connect(server.url, sid, host.token)
        listener_pid = serving_pid(listener, server.port, workers)
        # The kernel picks the worker: connect guests until one lands on the other.
        for attempt in range(40):
            guest = await api.user()
            speaker = await RoomClient.connect(server.url, sid, guest.token)
            if serving_pid(speaker, server.port, workers) != listener_pid:
                break
            speaker.close()
        else:
            raise AssertionError("40 sockets in a row landed on the same worker")
        sent = await speaker.chat("다른 프로세스에서 안녕", "across")
        heard = await listener.next("chat", timeout=5, text="다른 프로세스에서 안녕")
        assert heard["id"] == sent["id"]
        speaker.close()
        listener.close()
    finally:
        assert server.stop() == 0, server.output()


@pytest.mark.parametrize("workers", ["2", "0"])
def test_workers_on_the_embedded_set_up_are_refused(tmp_path, workers):
    done = subprocess.run([sys.executable, "-m", "ask2live", "serve", "--workers", workers,
                           "--data-dir", str(tmp_path / "data"), "--port", "0"],
                          env=clean_env(), capture_output=True, text=True, timeout=START_SECONDS)
    assert done.returncode == 2, done
    assert f"--workers {workers} needs --mysql-url and --redis-url" in done.stderr
