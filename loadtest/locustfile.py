"""ASK2LIVE load test: every virtual user plays the whole flow, REST and live room.

    locust -f loadtest/locustfile.py --headless -u 100 -r 20 -t 60s --host http://127.0.0.1:8888

A setup step (Locust's ``test_start``) signs up a host, schedules one session per room and
starts it. Each virtual user then signs up and logs in once, and loops over: list the live
sessions, open one, post a pre-question, read the questions and upvote someone else's, enter
the live room over WebSocket, chat at a steady rate while reading every frame of the room,
leave. See loadtest/README.md for the environment variables and how to read the results.

Live-room frames are reported to Locust's statistics as request type ``WS``:

* ``connect``: WebSocket handshake until the welcome frame has arrived. Not done within
  ASK2LIVE_LOAD_CONNECT_TIMEOUT (the echo timeout unless set) in all is a failure.
* ``chat echo``: from sending a chat frame to its own echo (the server's acknowledgement,
  matched by client_msg_id). An error frame, an echo not back within the timeout, or a
  connection the server drops are failures of this row (or of ``connection``).
* ``receive``: every event frame from someone else, with the time from the event's ``ts``
  (the server's clock when it appended the event; same machine, so comparable) to its
  arrival here: the fan-out latency. Its requests/s is the frames/s a user reads.

Locust's runtime is gevent (it monkey-patches the standard library when imported), so the
blocking ``websocket-client`` runs cooperatively: one greenlet reads, the task sends.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import secrets
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import gevent
import locust.runners
import requests
import websocket
from gevent.lock import Semaphore
from locust import FastHttpUser, constant, events, task
from locust.exception import StopUser
from locust.runners import MasterRunner

log = logging.getLogger("ask2live.load")

# With --processes, the master declares a worker "missing" after 3 heartbeats (3 s) and hands
# its users to the others; on a loaded 2-core machine a starved worker misses that easily, and
# the run then holds more users than -u (it ramped 1000 users to 1,654). Wait longer.
locust.runners.HEARTBEAT_LIVENESS = int(os.environ.get("ASK2LIVE_LOAD_HEARTBEAT_LIVENESS", "") or 30)


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


# Chat frames per second per user. The server refuses frames past its per-connection limit
# (--rate, default 5/s, burst --rate-burst 10) with rate_limited: keep this under it.
CHAT_RATE = _env_float("ASK2LIVE_LOAD_CHAT_RATE", 1.0)
# How long each visit to the live room chats before leaving.
CHAT_SECONDS = _env_float("ASK2LIVE_LOAD_CHAT_SECONDS", 20.0)
# An echo not back within this long is a failure.
ECHO_TIMEOUT = _env_float("ASK2LIVE_LOAD_ECHO_TIMEOUT", 10.0)
# The whole WebSocket connect (TCP, upgrade, welcome frame) must be done within this long,
# or it is a failure of the "WS connect" row.
CONNECT_TIMEOUT = _env_float("ASK2LIVE_LOAD_CONNECT_TIMEOUT", ECHO_TIMEOUT)
# Visits (list → … → leave) per user; 0: go on until the run ends (-t).
LOOPS = _env_int("ASK2LIVE_LOAD_LOOPS", 0)
# Rooms (live sessions) to create; users spread over them round-robin.
ROOMS = max(1, _env_int("ASK2LIVE_LOAD_ROOMS", 1))
# Comma-separated ids of sessions that are live already: no setup, users use these.
EXISTING_SESSIONS = [int(s) for s in os.environ.get("ASK2LIVE_LOAD_SESSION", "").split(",") if s.strip()]
# Share of others' frames reported as "receive" events (1: all). Every frame is read and
# counted either way; at high fan-out, reporting each one costs Locust CPU.
RECEIVE_SAMPLE = _env_float("ASK2LIVE_LOAD_RECEIVE_SAMPLE", 1.0)
PASSWORD = os.environ.get("ASK2LIVE_LOAD_PASSWORD", "load-test-password")

_user_numbers = itertools.count(1)
_run_tags: dict[int, str] = {}


def run_tag() -> str:
    """Unique per process and run, so that runs and workers never collide on usernames.
    Made on first use, not at import: `locust --processes` forks after importing this file."""
    pid = os.getpid()
    if pid not in _run_tags:
        _run_tags[pid] = f"{secrets.token_hex(3)}{pid % 10000}"
    return _run_tags[pid]


# The live sessions users go to, filled by the setup step.
SESSIONS: list[int] = []
_setup_lock = Semaphore()
_setup_error: str | None = None


class WsError(Exception):
    """An error frame (its code), a timeout or a drop in the live room."""


# ---------------------------------------------------------------------------- setup

def _api(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.request(method, base + path, json=body, headers=headers, timeout=30)
    if r.status_code >= 400:
        raise RuntimeError(f"{method} {path}: HTTP {r.status_code} {r.text[:300]}")
    return r.json() if r.content else {}


def create_live_sessions(base: str, rooms: int) -> list[int]:
    """Sign up a host, schedule `rooms` sessions and start them; their ids."""
    name = f"loadhost{run_tag()}"
    _api(base, "POST", "/api/users", {"username": name, "password": PASSWORD, "display_name": "Load host"})
    token = _api(base, "POST", "/api/login", {"username": name, "password": PASSWORD})["token"]
    starts_at = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    ids = []
    for n in range(rooms):
        session = _api(base, "POST", "/api/sessions", {
            "title": f"Load test room {n + 1} ({run_tag()})",
            "description": "Created by loadtest/locustfile.py.",
            "starts_at": starts_at, "tags": ["loadtest"],
        }, token)["session"]
        _api(base, "POST", f"/api/sessions/{session['id']}/start", None, token)
        ids.append(session["id"])
    return ids


def ensure_sessions(environment) -> None:
    """Once per process: the sessions from the environment, or new ones."""
    global _setup_error
    with _setup_lock:
        if SESSIONS or _setup_error:
            return
        if EXISTING_SESSIONS:
            SESSIONS.extend(EXISTING_SESSIONS)
            return
        start = time.perf_counter()
        try:
            SESSIONS.extend(create_live_sessions(environment.host.rstrip("/"), ROOMS))
        except Exception as exc:  # reported as a failure, so that the run fails
            _setup_error = str(exc)
            log.error("setup failed: %s", exc)
            environment.events.request.fire(
                request_type="SETUP", name="create live sessions", response_time=(time.perf_counter() - start) * 1000,
                response_length=0, exception=exc, context={})
            return
        log.info("live sessions for this run: %s", SESSIONS)


@events.test_start.add_listener
def on_test_start(environment, **_kwargs) -> None:
    # The master runs no users; a local runner and each worker set up for their own users
    # (each worker its own rooms, unless ASK2LIVE_LOAD_SESSION names them).
    if isinstance(environment.runner, MasterRunner):
        return
    if not environment.host:
        raise RuntimeError("pass --host http://127.0.0.1:8888 (the ASK2LIVE server)")
    ensure_sessions(environment)


@events.test_stop.add_listener
def on_test_stop(environment, **_kwargs) -> None:
    global _setup_error
    with _setup_lock:
        SESSIONS.clear()
        _setup_error = None


# ---------------------------------------------------------------------------- the live room

class LiveRoom:
    """One WebSocket to a room: a reader greenlet reports echoes and others' frames."""

    def __init__(self, user: "LiveQAUser", session_id: int, token: str) -> None:
        self.user = user
        self.fire = user.environment.events.request.fire
        base = urlsplit(user.host)
        scheme = "wss" if base.scheme == "https" else "ws"
        self.url = f"{scheme}://{base.netloc}/ws/sessions/{session_id}"
        self.headers = [f"Authorization: Bearer {token}"]  # never in the URL: proxies log URLs
        self.prefix = f"{user.username}-"
        self.pending: dict[str, float] = {}  # client_msg_id -> perf_counter at send
        self.ws: websocket.WebSocket | None = None
        self.reader: gevent.Greenlet | None = None
        self.leaving = False
        self.dropped = False
        self.received = 0

    # -- reporting

    def _event(self, name: str, response_time: float, length: int = 0, exception: Exception | None = None) -> None:
        self.fire(request_type="WS", name=name, response_time=response_time, response_length=length,
                  exception=exception, context={})

    def _fail_pending(self, reason: str) -> None:
        now = time.perf_counter()
        for cid, sent in list(self.pending.items()):
            del self.pending[cid]
            self._event("chat echo", (now - sent) * 1000, 0, WsError(reason))

    # -- connection

    def open(self) -> bool:
        start = time.perf_counter()
        # One deadline for the whole connect (TCP, upgrade, welcome): websocket-client's
        # `timeout` applies to each socket read, so a welcome trickling in (or a handshake
        # answered in parts) could take many times it and still count as a success.
        deadline = gevent.Timeout(CONNECT_TIMEOUT, WsError(f"connect took over {CONNECT_TIMEOUT:g} s"))
        deadline.start()
        try:
            self.ws = websocket.create_connection(self.url, timeout=CONNECT_TIMEOUT, skip_utf8_validation=True,
                                                  header=self.headers)
            raw = self.ws.recv()
            welcome = json.loads(raw)
            if welcome.get("type") != "welcome":
                raise WsError(f"first frame is {welcome.get('type')!r}, not welcome")
            elapsed = time.perf_counter() - start
            if elapsed > CONNECT_TIMEOUT:  # belt and braces: a deadline that fired late
                raise WsError(f"connect took over {CONNECT_TIMEOUT:g} s")
        except Exception as exc:
            deadline.cancel()
            self._event("connect", (time.perf_counter() - start) * 1000, 0, exc)
            self._shutdown()
            return False
        deadline.cancel()
        self._event("connect", elapsed * 1000, len(raw))
        self.ws.settimeout(None)  # the reader blocks; timeouts are the sender's business
        self.reader = gevent.spawn(self._read)
        return True

    def _read(self) -> None:
        ws = self.ws
        while True:
            try:
                opcode, frame = ws.recv_data_frame(control_frame=False)
            except Exception as exc:  # the socket went away under us
                if not self.leaving:
                    self._dropped(f"connection lost: {exc.__class__.__name__}: {exc}")
                return
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                if not self.leaving:
                    data = frame.data or b""
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    self._dropped(f"closed by server: {code} {data[2:].decode(errors='replace')}")
                return
            arrived = time.perf_counter()
            self._frame(frame.data, arrived)

    def _frame(self, data: bytes, arrived: float) -> None:
        self.received += 1
        # Cheap test first: only frames that name one of our ids need parsing to match.
        ours = self.prefix.encode() in data
        if not ours and RECEIVE_SAMPLE < 1.0 and random.random() >= RECEIVE_SAMPLE:
            return
        try:
            frame = json.loads(data)
        except ValueError:
            self._event("receive", 0, len(data), WsError("invalid JSON frame"))
            return
        kind = frame.get("type")
        cid = frame.get("client_msg_id")
        if kind == "error":
            sent = self.pending.pop(cid, None) if cid else None
            rt = (arrived - sent) * 1000 if sent is not None else 0
            self._event("chat echo", rt, len(data), WsError(f"error frame: {frame.get('code')}"))
            return
        if kind == "chat" and cid in self.pending:
            sent = self.pending.pop(cid)
            self._event("chat echo", (arrived - sent) * 1000, len(data))
            return
        if ours or "ts" not in frame:
            return  # our own join/leave, or a frame that is not an event (voice token…)
        fanout = max(0.0, time.time() * 1000 - frame["ts"])
        self._event("receive", fanout, len(data))

    def _dropped(self, reason: str) -> None:
        self.dropped = True
        self._event("connection", 0, 0, WsError(reason))
        self._fail_pending(reason)

    # -- chat

    def chat(self, seconds: float, rate: float, counter: itertools.count) -> None:
        """Send chat frames at `rate` a second for `seconds`, then wait for the echoes."""
        interval = 1.0 / rate
        start = time.perf_counter()
        next_send = start
        while not self.dropped and time.perf_counter() - start < seconds:
            cid = f"{self.prefix}{next(counter)}"
            text = f"hello from {self.user.username} ({cid})"
            payload = json.dumps({"type": "chat", "text": text, "client_msg_id": cid})
            self.pending[cid] = time.perf_counter()
            try:
                self.ws.send(payload)
            except Exception as exc:
                if not self.dropped:
                    self._dropped(f"send failed: {exc.__class__.__name__}: {exc}")
                break
            self._expire()
            next_send += interval
            gevent.sleep(max(0.0, next_send - time.perf_counter()))
        deadline = time.perf_counter() + ECHO_TIMEOUT
        while self.pending and not self.dropped and time.perf_counter() < deadline:
            gevent.sleep(0.05)
        self._expire(force=True)

    def _expire(self, force: bool = False) -> None:
        now = time.perf_counter()
        for cid, sent in list(self.pending.items()):
            if force or now - sent > ECHO_TIMEOUT:
                del self.pending[cid]
                self._event("chat echo", (now - sent) * 1000, 0, WsError(f"no echo within {ECHO_TIMEOUT:g} s"))

    def close(self) -> None:
        """Leave: a close frame, the server's close back (read by the reader), done."""
        self.leaving = True
        if self.ws is not None and self.ws.connected and not self.dropped:
            try:
                self.ws.send_close()
            except Exception:
                pass
        if self.reader is not None:
            self.reader.join(timeout=3)
            self.reader.kill(block=True)
        self._shutdown()

    def abort(self) -> None:
        """The user is being stopped (end of the run): no reports, just go."""
        self.leaving = True
        self.pending.clear()
        if self.reader is not None:
            self.reader.kill(block=False)
        self._shutdown()

    def _shutdown(self) -> None:
        if self.ws is not None:
            try:
                self.ws.shutdown()
            except Exception:
                pass


# ---------------------------------------------------------------------------- the user

class LiveQAUser(FastHttpUser):
    """Sign up and log in once; then visit: REST flow, live room, leave; repeat."""

    wait_time = constant(1)
    room: LiveRoom | None = None

    def on_start(self) -> None:
        ensure_sessions(self.environment)
        if not SESSIONS:
            raise StopUser()
        self.number = next(_user_numbers)
        self.username = f"u{run_tag()}n{self.number}"
        self.session_id = SESSIONS[(self.number - 1) % len(SESSIONS)]
        self.messages = itertools.count(1)
        self.visits = 0
        self.client.post("/api/users", json={"username": self.username, "password": PASSWORD},
                         name="/api/users")
        with self.client.post("/api/login", json={"username": self.username, "password": PASSWORD},
                              name="/api/login", catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"login: HTTP {r.status_code}")
                raise StopUser()
            self.token = r.json()["token"]
        self.auth = {"Authorization": f"Bearer {self.token}"}

    def on_stop(self) -> None:
        if self.room is not None:
            self.room.abort()
            self.room = None

    @task
    def visit(self) -> None:
        if LOOPS and self.visits >= LOOPS:
            raise StopUser()
        self.visits += 1
        get, post = self.client.get, self.client.post

        with get("/api/sessions?status=live", headers=self.auth, name="/api/sessions?status=live",
                 catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"HTTP {r.status_code}")
                return
            r.json()["items"]  # a real client reads the list (and would pick a session from it)

        sid = self.session_id
        r = get(f"/api/sessions/{sid}", headers=self.auth, name="/api/sessions/[id]")
        if r.status_code != 200:
            return

        post(f"/api/sessions/{sid}/questions", headers=self.auth, name="/api/sessions/[id]/questions",
             json={"text": f"What would you do differently? ({self.username} #{self.visits})",
                   "anonymous": random.random() < 0.2})

        r = get(f"/api/sessions/{sid}/questions?sort=recent&limit=50", headers=self.auth,
                name="/api/sessions/[id]/questions")
        if r.status_code == 200:
            others = [q for q in r.json()["items"] if not q["mine"] and not q["voted"] and not q.get("hidden")]
            if others:
                qid = random.choice(others)["id"]
                with post(f"/api/questions/{qid}/vote", headers=self.auth, name="/api/questions/[id]/vote",
                          catch_response=True) as v:
                    if v.status_code == 409 and _error_code(v) == "already_voted":
                        v.success()  # the server keeping vote-once: not a failure

        self.room = LiveRoom(self, sid, self.token)
        if self.room.open():
            self.room.chat(CHAT_SECONDS, CHAT_RATE, self.messages)
            self.room.close()
        self.room = None


def _error_code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except Exception:
        return None
