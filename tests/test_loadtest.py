"""Smoke test of the Locust load test (loadtest/locustfile.py): a real `ask2live serve` on
the production set-up (tests/serve.py: a MariaDB database and a Redis key prefix of its
own, dropped and deleted after); Locust headless for a few seconds with a few users. The
whole flow must run with zero failures, and the CSV must show REST rows and the live
room's WS rows."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PRODUCTION, SETUPS
from serve import ServeProcess, clean_env

# Looked up, not imported: importing locust monkey-patches the whole test process with
# gevent (sockets, threads, ssl), and Locust runs in a child process anyway.
MISSING = [name for name in ("locust", "websocket") if importlib.util.find_spec(name) is None]
pytestmark = [pytest.mark.skipif(bool(MISSING), reason=f"pip install {' '.join(MISSING)} (the test extra)"),
              pytest.mark.skipif(PRODUCTION not in SETUPS, reason="ASK2LIVE_TEST_SETUPS leaves out production")]

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"
REST_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}


@pytest.fixture
def server(tmp_path: Path):
    server = ServeProcess(PRODUCTION, tmp=tmp_path)
    yield server.url
    server.stop()


def test_locust_smoke(server: str, tmp_path: Path) -> None:
    env = clean_env(ASK2LIVE_LOAD_CHAT_SECONDS="3", ASK2LIVE_LOAD_CHAT_RATE="2")
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
