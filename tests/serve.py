"""Child processes for tests: the one way to run `ask2live serve` (and the Redis and
Prometheus servers some tests need beside it).

A child gets a clean environment: the developer's own ``ASK2LIVE_*`` settings (a
database URL, say) are not inherited, so a test runs what it says on every machine.
Its output goes to a log file in the test's directory (``output()`` reads it back, and a
process that fails to start says why). Stopping is SIGTERM, then SIGKILL if it has not
gone within the timeout.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

import orjson

from conftest import EMBEDDED, MYSQL_SERVER, PRODUCTION, REDIS_URL, delete_redis_keys, drop_database

# Long enough for a server to flush its write-behind and close its sockets on SIGTERM.
STOP_SECONDS = 15.0
START_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(method: str, url: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    """One blocking JSON request, for code that drives a server outside an event loop:
    (status, the decoded body or None). A POST, PATCH or PUT without a body sends an empty one."""
    data = orjson.dumps(body) if body is not None else (b"" if method in ("POST", "PATCH", "PUT") else None)
    request = urllib.request.Request(url, data=data, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, orjson.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, orjson.loads(e.read() or b"null")


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any ASK2LIVE_ setting of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASK2LIVE_")}
    env.update(extra)
    return env


class ChildProcess:
    """A command in a child process, its output in ``log``, until stop() or kill()."""

    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
        self.args = args
        self.log = log
        self._log_file = open(log, "ab")
        self.proc = subprocess.Popen(args, env=clean_env() if env is None else env, cwd=cwd,
                                     stdout=self._log_file, stderr=subprocess.STDOUT)

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def output(self) -> str:
        if not self._log_file.closed:
            self._log_file.flush()
        return self.log.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], what: str, timeout: float = START_SECONDS) -> None:
        """Poll ``ready`` until it holds; fail, with the output, if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running:
                raise AssertionError(f"{self.args[0]} exited with {self.proc.returncode} before {what}:\n"
                                     f"{self.output()[-4000:]}")
            if ready():
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args[0]}: no {what} after {timeout} s:\n{self.output()[-4000:]}")
            time.sleep(0.05)

    def wait_listening(self, port: int, timeout: float = START_SECONDS) -> None:
        def listening() -> bool:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return True
            except OSError:
                return False

        self.wait_until(listening, f"listener on port {port}", timeout)

    def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """SIGTERM, then SIGKILL if it does not go: the exit code after SIGTERM, None if it
        had to be killed. A process that had exited already gives its exit code."""
        code: int | None = self.proc.poll()
        if code is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()
        return code

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log_file.close()


class ServeProcess(ChildProcess):
    """``python -m ask2live serve`` on one set-up, healthy (GET /healthz answers 200) once
    constructed; ``args`` are further flags.

    "embedded": the SQLite store and the secret in its data directory (made by the server).
    "production": MariaDB, in a database of its own, and Redis, under a key prefix of its
    own, both deleted by stop(), and a secret of its own. ``like=`` another production
    process starts one more process of the same deployment: the same database, Redis and
    secret, which stay until that first process is stopped (stop it last).
    """

    def __init__(self, setup: str, *args: str, tmp: Path, name: str = "server", port: int | None = None,
                 data_dir: Path | None = None, redis_url: str = REDIS_URL, env: dict[str, str] | None = None,
                 like: "ServeProcess | None" = None) -> None:
        assert setup in (EMBEDDED, PRODUCTION), setup
        self.setup = setup
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir or tmp / f"{name}-data"
        self.owner = like is None
        if like is not None:
            assert like.setup == setup == PRODUCTION, "only production processes share a deployment"
            self.database, self.redis_url, self.redis_prefix, self.secret = (
                like.database, like.redis_url, like.redis_prefix, like.secret)
        elif setup == PRODUCTION:
            self.database = f"ask2live_serve_{os.getpid()}_{secrets.token_hex(3)}"
            self.redis_url = redis_url
            self.redis_prefix = f"ask2live-serve-{secrets.token_hex(4)}"
            self.secret = secrets.token_hex(32)  # one secret: a token from one process works on the others
        else:
            self.database = self.redis_url = self.redis_prefix = self.secret = None
        flags = ["--host", "127.0.0.1", "--port", str(self.port), "--data-dir", str(self.data_dir)]
        if setup == PRODUCTION:
            flags += ["--mysql-url", f"{MYSQL_SERVER}/{self.database}", "--redis-url", self.redis_url,
                      "--redis-prefix", self.redis_prefix]
        variables = {"ASK2LIVE_SECRET": self.secret} if self.secret else {}
        super().__init__([sys.executable, "-m", "ask2live", "serve", *flags, *args], tmp / f"{name}.log",
                         env=clean_env(**variables, **(env or {})), cwd=tmp)
        self.health: Any = None
        try:
            self.wait_until(self._healthy, "answer from /healthz")
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                self.health = orjson.loads(r.read())
                return r.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            # TimeoutError: the port is bound before start-up (cli.py), so a connection made
            # while the server starts waits in the listen backlog instead of being refused.
            return False

    def stop(self, timeout: float = STOP_SECONDS) -> int | None:
        """Stop the process, then (the first process of a deployment) drop its database and
        delete its Redis keys."""
        code = super().stop(timeout)
        if self.owner and self.database:
            drop_database(self.database)
            self.database = None
        if self.owner and self.redis_prefix:
            delete_redis_keys(self.redis_prefix, self.redis_url)
            self.redis_prefix = None
        return code
