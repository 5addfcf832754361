"""Smoke test of the Locust load test (loadtest/locustfile.py): a real `ask2live serve` on
MariaDB (a database of this test's own, dropped after) and Redis (a key prefix of its own,
deleted after); Locust headless for a few seconds with a few users. The whole flow must run
with zero failures, and the CSV must show REST rows and the live room's WS rows."""

from __future__ import annotations

import csv
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import MYSQL_SERVER, REDIS_URL, delete_redis_keys, mysql_connect

pytest.importorskip("locust")
pytest.importorskip("websocket")

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
REST_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} is not healthy after {timeout} s")


@pytest.fixture
def server(tmp_path: Path):
    port = free_port()
    db = f"ask2live_load_{os.getpid()}_{secrets.token_hex(3)}"
    prefix = f"ask2live-load-{secrets.token_hex(4)}"
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ask2live", "serve", "--port", str(port), "--data-dir", str(tmp_path / "data"),
         "--mysql-url", f"{MYSQL_SERVER}/{db}", "--redis-url", REDIS_URL, "--redis-prefix", prefix],
        env=dict(os.environ, ASK2LIVE_SECRET=secrets.token_hex(32)), stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        conn = mysql_connect()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
        conn.close()
        delete_redis_keys(prefix)


def test_locust_smoke(server: str, tmp_path: Path) -> None:
    env = dict(os.environ, ASK2LIVE_LOAD_CHAT_SECONDS="3", ASK2LIVE_LOAD_CHAT_RATE="2")
    for name in ("ASK2LIVE_LOAD_SESSION", "ASK2LIVE_LOAD_ROOMS", "ASK2LIVE_LOAD_LOOPS", "ASK2LIVE_LOAD_RECEIVE_SAMPLE"):
        env.pop(name, None)
    out = tmp_path / "locust.log"
    with open(out, "w") as f:
        result = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "5", "-r", "5", "-t", "8s",
             "--host", server, "--csv", str(tmp_path / "run"), "--exit-code-on-error", "1", "--only-summary"],
            cwd=tmp_path, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=60)
    output = out.read_text()
    assert result.returncode == 0, output[-4000:]

    with open(tmp_path / "run_stats.csv", newline="") as f:
        rows = {(r["Type"], r["Name"]): r for r in csv.DictReader(f)}
    failures = {key: int(r["Failure Count"]) for key, r in rows.items() if int(r["Failure Count"])}
    assert not failures, (failures, output[-4000:])
    assert int(rows[("", "Aggregated")]["Failure Count"]) == 0

    def count(key: tuple[str, str]) -> int:
        return int(rows[key]["Request Count"]) if key in rows else 0

    assert count(("WS", "chat echo")) > 0, rows.keys()
    assert count(("WS", "connect")) > 0
    assert count(("WS", "receive")) > 0  # five users in one room hear each other
    rest = {key: int(r["Request Count"]) for key, r in rows.items() if key[0] in REST_METHODS}
    for key in [("POST", "/api/users"), ("POST", "/api/login"), ("GET", "/api/sessions?status=live"),
                ("GET", "/api/sessions/[id]"), ("POST", "/api/sessions/[id]/questions"),
                ("GET", "/api/sessions/[id]/questions")]:
        assert rest.get(key, 0) > 0, (key, rest)
    # Percentile columns are filled for the live room as for REST.
    assert rows[("WS", "chat echo")]["95%"] not in ("", "N/A")

    with open(tmp_path / "run_failures.csv", newline="") as f:
        assert list(csv.DictReader(f)) == []
