"""Shared by compare.py and fanout.py.

- ``Server``: one ``ask2live serve`` subprocess on a free port, with its own MariaDB database
  and MySQL user (so its statements can be told apart from anyone else's), its own Redis
  prefix, and its CPU read from /proc.
- ``Api``: the REST set-up (users, tokens, live sessions) over plain http.client.
- ``Snapshot``: SHOW GLOBAL STATUS, the server user's USER_STATISTICS, and the CPU of every
  process that matters, taken before and after a measured window.
- ``ClientPool``: WebSocket clients in separate processes, written to be cheap: raw sockets,
  the handshake by hand, an epoll loop, frames split by their headers only. Latency comes from
  a send time the sender writes into the chat text (CLOCK_MONOTONIC, nanoseconds): the clock is
  system-wide on Linux, so a receiver in another process subtracts it directly.
"""

from __future__ import annotations

import base64
import http.client
import math
import multiprocessing
import os
import re
import resource
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MYSQL = dict(host="127.0.0.1", port=3306, user="root", password="")
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "bench-password-1"

# SHOW GLOBAL STATUS counters read around every window. Innodb_os_log_fsyncs is MySQL's and
# older MariaDB's name; MariaDB 10.8+ dropped it (its log fsyncs are in Innodb_data_fsyncs).
STATUS_NAMES = ("Com_insert", "Com_insert_select", "Com_update", "Com_delete", "Com_replace", "Com_select",
                "Com_commit", "Innodb_data_writes", "Innodb_data_fsyncs", "Innodb_os_log_fsyncs",
                "Innodb_log_writes", "Innodb_data_written", "Innodb_os_log_written")
WRITE_COMS = ("Com_insert", "Com_insert_select", "Com_update", "Com_delete", "Com_replace")

MARK = b'"text":"B'  # the start of a bench chat line as the server echoes it: B<send ns>


def mono_ns() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def raise_nofile(want: int = 65536) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, want), hard) if hard != resource.RLIM_INFINITY else max(soft, want)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# ---------------------------------------------------------------------------- /proc CPU

def proc_cpu(pid: int) -> float:
    """utime + stime of a process, in seconds (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine, all cores."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    total = sum(parts[:8])
    idle = parts[3] + parts[4]
    return (total - idle) / CLK_TCK, total / CLK_TCK


def wait_quiet(max_wait: float, threshold: float = 0.3, exclude: list[int] | None = None) -> float:
    """Wait (up to max_wait s) until the machine's busy cores over one second, less the
    processes in ``exclude``, are below threshold; returns the last such figure. Other
    work on a 2-core machine shows up in every latency and CPU figure here."""
    deadline = time.monotonic() + max_wait
    while True:
        b0, _ = machine_cpu()
        e0 = sum(proc_cpu(p) for p in exclude or [])
        time.sleep(1.0)
        b1, _ = machine_cpu()
        e1 = sum(proc_cpu(p) for p in exclude or [])
        busy = max(0.0, (b1 - b0) - (e1 - e0))
        if busy < threshold or time.monotonic() >= deadline:
            return round(busy, 2)
        print(f"(machine busy with other work: {busy:.2f} cores; waiting)", file=sys.stderr)


def pids_named(name: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() == name:
                        out.append(int(entry))
            except OSError:
                pass
    return out


# ---------------------------------------------------------------------------- MySQL / Redis

def mysql(db: str | None = None):
    import pymysql

    return pymysql.connect(**MYSQL, database=db, autocommit=True)


def global_status() -> dict[str, int]:
    conn = mysql()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW GLOBAL STATUS")
            rows = dict(cur.fetchall())
    finally:
        conn.close()
    return {k: int(rows[k]) for k in STATUS_NAMES if k in rows}


def user_statistics(user: str) -> dict[str, int] | None:
    """This MySQL user's counters (MariaDB userstat), or None where unavailable."""
    conn = mysql()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT SELECT_COMMANDS, UPDATE_COMMANDS, OTHER_COMMANDS, ROWS_INSERTED, COMMIT_TRANSACTIONS"
                        " FROM information_schema.USER_STATISTICS WHERE USER = %s", (user,))
            row = cur.fetchone()
    except Exception:
        return None
    finally:
        conn.close()
    keys = ("select_commands", "update_commands", "other_commands", "rows_inserted", "commits")
    return dict(zip(keys, (int(v) for v in row))) if row else dict.fromkeys(keys, 0)


class UserStat:
    """Turns MariaDB's userstat on for the run (it is off by default) and back off after, so
    the statements of the bench server's own MySQL user can be counted apart from any other
    activity on a shared database server. The global counters are reported as well."""

    def __init__(self) -> None:
        self.enabled_by_us = False
        self.available = False

    def __enter__(self) -> "UserStat":
        try:
            conn = mysql()
            with conn.cursor() as cur:
                cur.execute("SELECT @@userstat")
                on = bool(int(cur.fetchone()[0]))
                if not on:
                    cur.execute("SET GLOBAL userstat = 1")
                    self.enabled_by_us = True
                self.available = True
            conn.close()
        except Exception as exc:
            print(f"(userstat unavailable: {exc}; only global counters)", file=sys.stderr)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled_by_us:
            conn = mysql()
            with conn.cursor() as cur:
                cur.execute("SET GLOBAL userstat = 0")
            conn.close()


def redis_cleanup(prefix: str) -> int:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    n = 0
    keys = list(r.scan_iter(match=f"{prefix}:*", count=1000))
    for i in range(0, len(keys), 500):
        n += r.delete(*keys[i:i + 500])
    r.close()
    return n


# ---------------------------------------------------------------------------- the server

class Server:
    """One ``ask2live serve`` with a database, MySQL user and Redis prefix of its own."""

    # The interpreter that runs `-m ask2live serve` (the working tree's code either way: the
    # server starts in the repository root); bench --server-python changes it for an A/B.
    python = sys.executable

    def __init__(self, label: str, args: list[str], redis: bool = True, mysql_on: bool = True) -> None:
        self.label = label
        self.tag = f"a2lb_{re.sub('[^a-z0-9]', '', label.lower())[:12]}_{secrets.token_hex(3)}"
        self.db = self.user = self.tag
        self.db_password = secrets.token_hex(8)
        self.prefix = f"a2lbench:{self.tag}"
        self.port = free_port()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{self.tag}-"))
        self.args = args
        self.use_redis = redis
        self.use_mysql = mysql_on
        self.proc: subprocess.Popen | None = None
        self.log_path = self.tmp / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        cmd = [self.python, "-m", "ask2live", "serve", "--port", str(self.port), "--data-dir", str(self.tmp / "data"),
               "--secret", secrets.token_hex(32),
               # Every simulated user signs up and logs in from this one address, and its
               # thousands of sockets all come from it too.
               "--signup-limit", "0", "--login-address-limit", "0", "--max-connections-per-ip", "0"]
        if self.use_mysql:
            conn = mysql()
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{self.db}` CHARACTER SET utf8mb4")
                cur.execute(f"CREATE USER '{self.user}'@'%' IDENTIFIED BY '{self.db_password}'")
                cur.execute(f"GRANT ALL ON `{self.db}`.* TO '{self.user}'@'%'")
            conn.close()
            cmd += ["--mysql-url", f"mysql://{self.user}:{self.db_password}@127.0.0.1:3306/{self.db}"]
        if self.use_redis:
            cmd += ["--redis-url", REDIS_URL, "--redis-prefix", self.prefix]
        cmd += self.args
        self.command = cmd
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,
                                     preexec_fn=lambda: raise_nofile(65536))
        wait_port(self.port, self.proc)

    def cpu(self) -> float:
        return proc_cpu(self.pid)

    def metrics(self) -> dict[str, float]:
        """A few counters off the server's /metrics."""
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.request("GET", "/metrics")
            text = c.getresponse().read().decode()
            c.close()
        except OSError:
            return {}
        out = {}
        for name in ("ask2live_frames_sent_total", "ask2live_slow_client_drops_total", "ask2live_rate_limited_total"):
            m = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
            if m:
                out[name] = float(m.group(1))
        return out

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def cleanup(self, keep_logs: bool = False) -> None:
        self.stop()
        if self.use_mysql:
            conn = mysql()
            with conn.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS `{self.db}`")
                cur.execute(f"DROP USER IF EXISTS '{self.user}'@'%'")
            conn.close()
        if self.use_redis:
            redis_cleanup(self.prefix)
        if not keep_logs:
            import shutil

            shutil.rmtree(self.tmp, ignore_errors=True)


class Api:
    def __init__(self, port: int) -> None:
        self.port = port

    def call(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        payload = orjson.dumps(body) if body is not None else (b"" if method == "POST" else None)
        c.request(method, path, body=payload, headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, (orjson.loads(data) if data else None)

    def token(self, name: str) -> str:
        status, body = self.call("POST", "/api/users", {"username": name, "password": PASSWORD, "display_name": name})
        if status not in (201, 409):
            raise RuntimeError(f"sign-up {name}: {status} {body}")
        status, body = self.call("POST", "/api/login", {"username": name, "password": PASSWORD})
        if status != 200:
            raise RuntimeError(f"login {name}: {status} {body}")
        return body["token"]

    def live_session(self, host_token: str, title: str) -> int:
        status, body = self.call("POST", "/api/sessions", {"title": title, "starts_at": "2099-01-01T00:00:00Z"},
                                 host_token)
        if status != 201:
            raise RuntimeError(f"session: {status} {body}")
        sid = body["session"]["id"]
        status, body = self.call("POST", f"/api/sessions/{sid}/start", None, host_token)
        if status != 200:
            raise RuntimeError(f"start: {status} {body}")
        return sid


# ---------------------------------------------------------------------------- measurement

@dataclass
class Snapshot:
    t: float
    server_cpu: float
    client_cpu: float
    mysqld_cpu: float
    redis_cpu: float
    machine_busy: float
    machine_total: float
    status: dict[str, int] = field(default_factory=dict)
    userstat: dict[str, int] | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def take(cls, server: Server, client_pids: list[int], db: bool = True) -> "Snapshot":
        busy, total = machine_cpu()
        return cls(
            t=time.monotonic(),
            server_cpu=server.cpu(),
            client_cpu=sum(proc_cpu(p) for p in client_pids),
            mysqld_cpu=sum(proc_cpu(p) for p in pids_named("mariadbd") + pids_named("mysqld")),
            redis_cpu=sum(proc_cpu(p) for p in pids_named("redis-server")),
            machine_busy=busy, machine_total=total,
            status=global_status() if db and server.use_mysql else {},
            userstat=user_statistics(server.user) if db and server.use_mysql else None,
            metrics=server.metrics(),
        )


def cpu_delta(a: Snapshot, b: Snapshot) -> dict[str, float]:
    wall = b.t - a.t
    busy = b.machine_busy - a.machine_busy
    parts = {
        "server": b.server_cpu - a.server_cpu,
        "clients": b.client_cpu - a.client_cpu,
        "mysqld": b.mysqld_cpu - a.mysqld_cpu,
        "redis": b.redis_cpu - a.redis_cpu,
    }
    parts["other"] = max(0.0, busy - sum(parts.values()))
    out = {f"{k}_cores": round(v / wall, 3) for k, v in parts.items()}
    out["machine_busy_cores"] = round(busy / wall, 3)
    out["machine_cores"] = os.cpu_count()
    out["wall_s"] = round(wall, 2)
    out["server_cpu_s"] = round(parts["server"], 3)
    out["clients_cpu_s"] = round(parts["clients"], 3)
    return out


def percentiles(values: array | list, missing: int = 0, qs: tuple[float, ...] = (50, 95, 99, 99.9)) -> dict[str, float | None]:
    """Percentiles in ms of latencies in ns. ``missing`` deliveries that never arrived count as
    infinitely late: a percentile that falls on them is None (reported as "lost")."""
    data = sorted(values)
    n = len(data) + missing
    out: dict[str, float | None] = {}
    for q in qs:
        if n == 0:
            out[f"p{q:g}"] = None
            continue
        idx = min(n - 1, max(0, math.ceil(q / 100 * n) - 1))  # nearest rank
        out[f"p{q:g}"] = round(data[idx] / 1e6, 3) if idx < len(data) else None
    out["max"] = round(data[-1] / 1e6, 3) if data else None
    out["mean"] = round(sum(data) / len(data) / 1e6, 3) if data else None
    return out


# ---------------------------------------------------------------------------- the clients

def _client_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """A masked client frame (RFC 6455 §5.3)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0xFE, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0xFF, n)
    mask = os.urandom(4)
    if n == 0:
        return header + mask
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return header + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def _first_frame(buf: bytes) -> tuple[bytes, bytes] | None:
    """(payload of the first complete frame, the bytes after it), or None if incomplete."""
    if len(buf) < 2:
        return None
    ln, h = buf[1] & 127, 2
    if ln == 126:
        if len(buf) < 4:
            return None
        ln, h = int.from_bytes(buf[2:4], "big"), 4
    elif ln == 127:
        if len(buf) < 10:
            return None
        ln, h = int.from_bytes(buf[2:10], "big"), 10
    if len(buf) < h + ln:
        return None
    return buf[h:h + ln], buf[h + ln:]


@dataclass
class Opened:
    sock: socket.socket
    rest: bytes  # bytes read past the welcome
    room: int


def open_clients(port: int, plan: list[tuple[int, int, str]], window: int = 8,
                 progress: str | None = None) -> list[Opened]:
    """Open one WebSocket per (room index, session id, token), by hand, in this order (which is
    the order of the room's members on the server, the order its fan-out writes them), each
    up to and including its welcome; ``window`` handshakes are in flight at a time."""
    out: list[Opened] = []
    t0 = drained = time.monotonic()
    for start in range(0, len(plan), window):
        batch = []
        for room, sid, token in plan[start:start + window]:
            s = socket.create_connection(("127.0.0.1", port), timeout=120)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET /ws/sessions/{sid} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
                       f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                       f"Sec-WebSocket-Version: 13\r\n\r\n").encode())
            batch.append((s, room))
        for s, room in batch:
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
            while (first := _first_frame(buf)) is None:
                chunk = s.recv(262144)
                if not chunk:
                    raise ConnectionError("closed before the welcome")
                buf += chunk
            payload, rest = first
            if not payload.startswith(b'{"type":"welcome"'):
                raise ConnectionError(f"expected the welcome, got {payload[:100]!r}")
            s.setblocking(False)
            out.append(Opened(s, rest, room))
        if time.monotonic() - drained > 2.0:  # keep the first ones read, and their pings answered
            for o in out:
                _drain(o)
            drained = time.monotonic()
        if progress and (len(out) % 200 < window) and len(out) > window:
            print(f"[{progress}] {len(out)}/{len(plan)} joined, {time.monotonic() - t0:.1f} s", file=sys.stderr)
    return out


def _drain(o: Opened) -> None:
    """Read what is waiting on an opened socket, answer pings, keep only a partial frame."""
    buf = o.rest
    while True:
        try:
            chunk = o.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            break
        if not chunk:
            break
        buf += chunk
    while (first := _first_frame(buf)) is not None:
        if buf[0] & 15 == 9:
            try:
                o.sock.send(_client_frame(first[0], 0xA))
            except OSError:
                pass
        buf = first[1]
    o.rest = buf


class _Conn:
    __slots__ = ("sock", "pending", "room", "sample", "closed", "out")

    def __init__(self, sock: socket.socket, rest: bytes, room: int, sample: bool) -> None:
        self.sock = sock
        self.pending = rest
        self.room = room
        self.sample = sample
        self.closed = False
        self.out = b""


@dataclass
class WorkerSpec:
    # This process's sockets (opened by the parent, inherited over fork).
    conns: list[Opened]
    # Parse the latency out of every chat frame on these (indexes into conns); on the
    # others frames are only counted from their headers.
    sample: set[int] = field(default_factory=set)
    # Which of the sockets send (indexes); the phase's rate is spread over them.
    senders: list[int] = field(default_factory=list)
    # Count-only processes read in batches: poll at most every batch_ms, so that one recv()
    # takes many frames. Never for a process that samples latency or sends.
    batch_ms: float = 0.0
    name: str = "w"


def _worker_main(pipe, spec: WorkerSpec, foreign: list[socket.socket]) -> None:
    """One client process: read its sockets, run the phases the parent asks for."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for s in foreign:  # the other processes' sockets, inherited over fork
        s.close()
    ep = select.epoll()
    fdmap: dict[int, _Conn] = {}
    conns = []
    for i, o in enumerate(spec.conns):
        c = _Conn(o.sock, o.rest, o.room, i in spec.sample)
        conns.append(c)
        fdmap[o.sock.fileno()] = c
        ep.register(o.sock.fileno(), select.EPOLLIN)
    pfd = pipe.fileno()
    ep.register(pfd, select.EPOLLIN)
    batch_s = spec.batch_ms / 1000 if not spec.sample and not spec.senders else 0.0

    st: dict[str, Any] = {}
    lat = array("q")
    recv_room: dict[int, int] = {}

    def reset() -> None:
        nonlocal lat
        st.update(frames=0, frames_in_window=0, chat=0, other=0, bytes=0, closes=0, close_codes=[],
                  errors=0, error_samples=[], last_frame=0, sent=0, sent_room={}, send_blocked=0, skipped=0,
                  recvs=0)
        lat = array("q")
        recv_room.clear()

    reset()
    phase: dict | None = None
    senders = [conns[i] for i in spec.senders]
    rr = 0
    seq = 0
    next_send = 0
    interval = 0
    start_ns = end_ns = 1 << 62

    def close(c: _Conn) -> None:
        c.closed = True
        try:
            ep.unregister(c.sock.fileno())
        except (OSError, ValueError):
            pass
        st["closes"] += 1

    def on_readable(c: _Conn) -> None:
        try:
            data = c.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            close(c)
            return
        now = mono_ns()
        st["recvs"] += 1
        if c.pending:
            data = c.pending + data
        n = len(data)
        i = 0
        st["bytes"] += n
        in_phase = now >= start_ns
        sample = c.sample
        frames = 0
        while n - i >= 2:
            ln = data[i + 1] & 127
            if ln < 126:
                h = 2
            elif ln == 126:
                if n - i < 4:
                    break
                ln = (data[i + 2] << 8) | data[i + 3]
                h = 4
            else:
                if n - i < 10:
                    break
                ln = int.from_bytes(data[i + 2:i + 10], "big")
                h = 10
            end = i + h + ln
            if end > n:
                break
            op = data[i] & 15
            if op == 1:
                frames += 1
                if sample and in_phase:
                    j = data.find(MARK, i + h, end)
                    if j >= 0:
                        k = data.find(b'"', j + 9, end)
                        lat.append(now - int(data[j + 9:k]))
                        st["chat"] += 1
                        recv_room[c.room] = recv_room.get(c.room, 0) + 1
                    elif data.startswith(b'"type":"error"', i + h + 1):
                        st["errors"] += 1
                        if len(st["error_samples"]) < 3:
                            st["error_samples"].append(bytes(data[i + h:end][:200]).decode(errors="replace"))
                    else:
                        st["other"] += 1
            elif op == 9:
                try:
                    c.sock.send(_client_frame(bytes(data[i + h:end]), 0xA))
                except OSError:
                    pass
            elif op == 8:
                st["close_codes"].append((data[i + h] << 8 | data[i + h + 1]) if ln >= 2 else 0)
            i = end
        c.pending = data[i:] if i < n else b""
        if frames and in_phase:
            st["frames"] += frames
            st["last_frame"] = now
            if now <= end_ns:
                st["frames_in_window"] += frames

    def flush(c: _Conn) -> None:
        try:
            sent = c.sock.send(c.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            c.out = b""
            return
        c.out = c.out[sent:]

    def send_chat(c: _Conn) -> None:
        nonlocal seq
        seq += 1
        if c.out:
            st["send_blocked"] += 1
        payload = b'{"type":"chat","text":"B%d","client_msg_id":"%s-%d"}' % (mono_ns(), spec.name.encode(), seq)
        c.out += _client_frame(payload)
        flush(c)
        st["sent"] += 1
        st["sent_room"][c.room] = st["sent_room"].get(c.room, 0) + 1

    pipe.send(("ready", len(conns)))
    while True:
        if phase is not None:
            now = mono_ns()
            if interval and start_ns <= now < end_ns:
                behind = 0
                while next_send <= now and next_send < end_ns:
                    if behind >= 200:  # 200 behind: this process is the bottleneck; skip, and say so
                        skipped = (now - next_send) // interval
                        st["skipped"] += skipped
                        next_send += skipped * interval
                        break
                    send_chat(senders[rr])
                    rr = (rr + 1) % len(senders)
                    next_send += interval
                    behind += 1
            for c in senders:
                if c.out:
                    flush(c)
            if now > end_ns and (now - max(end_ns, st["last_frame"]) > phase["quiet_ns"]
                                 or now > end_ns + phase["drain_ns"]):
                result = dict(st, lat=lat.tobytes(), recv_room=dict(recv_room), name=spec.name,
                              sockets=len(conns), open=sum(not c.closed for c in conns))
                pipe.send(("result", result))
                phase = None
                start_ns = end_ns = 1 << 62
                reset()
                continue
            if interval and now < end_ns:
                timeout = max(0.0, (max(next_send, start_ns) - now) / 1e9)
            else:
                timeout = 0.05
        else:
            timeout = 0.5
        t_poll = time.monotonic()
        for fd, _ in ep.poll(timeout):
            if fd != pfd:
                on_readable(fdmap[fd])
                continue
            cmd = pipe.recv()
            if cmd[0] == "stop":
                for c2 in conns:
                    try:
                        c2.sock.close()
                    except OSError:
                        pass
                pipe.send(("stopped", None))
                return
            if cmd[0] == "phase":
                phase = cmd[1]
                reset()
                start_ns, end_ns = phase["start_ns"], phase["end_ns"]
                interval = int(1e9 / phase["rate"]) if phase["rate"] and senders else 0
                next_send = start_ns
        if batch_s:
            left = batch_s - (time.monotonic() - t_poll)
            if left > 0:
                time.sleep(left)


class ClientPool:
    """Client processes over sockets the parent opened; the parent runs the phases."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.specs = specs
        self.pipes = []
        self.procs = []
        every = [o.sock for spec in specs for o in spec.conns]
        for spec in specs:
            mine = {id(o.sock) for o in spec.conns}
            foreign = [s for s in every if id(s) not in mine]
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker_main, args=(child, spec, foreign), daemon=True, name=spec.name)
            p.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(p)
        for s in every:  # the children hold them now
            s.close()
        for pipe, spec in zip(self.pipes, self.specs):
            if not pipe.poll(60):
                raise RuntimeError(f"{spec.name}: did not start")
            kind, value = pipe.recv()
            if kind != "ready":
                raise RuntimeError(f"{spec.name}: {value}")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def run_phase(self, rates: list[float], seconds: float, quiet: float = 1.0, drain: float = 10.0,
                  lead: float = 0.3, at_start=None, at_end=None) -> list[dict]:
        """Every process runs the same window [start, start + seconds), each sending at its
        rate; returns each one's results once it has drained. ``at_start`` and ``at_end`` are
        called at the window's edges (for CPU snapshots of the window alone)."""
        start = mono_ns() + int(lead * 1e9)
        end = start + int(seconds * 1e9)
        for pipe, rate in zip(self.pipes, rates):
            pipe.send(("phase", {"start_ns": start, "end_ns": end, "rate": rate,
                                 "quiet_ns": int(quiet * 1e9), "drain_ns": int(drain * 1e9)}))
        time.sleep(max(0.0, (start - mono_ns()) / 1e9))
        if at_start is not None:
            at_start()
        time.sleep(max(0.0, (end - mono_ns()) / 1e9))
        if at_end is not None:
            at_end()
        out = []
        for pipe, spec in zip(self.pipes, self.specs):
            if not pipe.poll(seconds + drain + 60):
                raise RuntimeError(f"{spec.name}: no result")
            kind, value = pipe.recv()
            if kind != "result":
                raise RuntimeError(f"{spec.name}: {value}")
            value["lat_arr"] = array("q")
            value["lat_arr"].frombytes(value.pop("lat"))
            out.append(value)
        return out

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("stop", None))
            except OSError:
                pass
        for p in self.procs:
            p.join(10)
            if p.is_alive():
                p.kill()
                p.join(5)


def merge(results: list[dict]) -> dict:
    lat = array("q")
    for r in results:
        lat.extend(r["lat_arr"])
    keys = ("frames", "frames_in_window", "chat", "other", "errors", "closes", "sent", "send_blocked", "skipped",
            "bytes", "recvs")
    out = {k: sum(r[k] for r in results) for k in keys}
    out["lat"] = lat
    out["sent_room"] = {}
    out["recv_room"] = {}
    for r in results:
        for k, v in r["sent_room"].items():
            out["sent_room"][k] = out["sent_room"].get(k, 0) + v
        for k, v in r["recv_room"].items():
            out["recv_room"][k] = out["recv_room"].get(k, 0) + v
    out["close_codes"] = sorted({c for r in results for c in r["close_codes"]})
    out["error_samples"] = [e for r in results for e in r["error_samples"]][:3]
    out["open"] = sum(r["open"] for r in results)
    out["sockets"] = sum(r["sockets"] for r in results)
    return out


# ---------------------------------------------------------------------------- profiling

IDLE_LEAVES = ("epoll_wait", "select", "poll (", "epoll_pwait")
IDLE_WAITS = ("_queue_SimpleQueue_get", "PyThread_acquire_lock_timed")


def collapse(raw: Path) -> dict:
    """A py-spy raw (collapsed) profile: shares per function of the busy samples (those not
    waiting in epoll, nor a thread-pool worker waiting for work), by self time (the frame on
    top: with --native, C frames such as libc's send) and inclusive time (anywhere in the stack)."""
    import collections

    self_t: collections.Counter = collections.Counter()
    incl: collections.Counter = collections.Counter()
    total = idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        if any(frames[-1].startswith(x) for x in IDLE_LEAVES) or any(w in stack for w in IDLE_WAITS):
            idle += n
            continue
        self_t[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
    busy = total - idle
    if not busy:
        return {"samples": total, "idle_samples": idle}

    def top(c, k):
        return [{"function": f, "pct_of_busy": round(100 * n / busy, 1)} for f, n in c.most_common(k)]

    return {"samples": total, "idle_samples": idle, "busy_pct": round(100 * busy / total, 1),
            "self": top(self_t, 30), "inclusive": top(incl, 60)}


def profile_server(pid: int, out: Path, stem: str, seconds: float, load) -> dict:
    """Run ``load()`` (a phase lasting a little over 2 × seconds) while py-spy records the
    server twice: raw stacks (for the numbers), then an SVG flame graph. py-spy pauses the
    process for each sample (200 Hz), so the figures under profiling are a little worse."""
    import shutil
    import threading

    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if pyspy is None:
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    raw, svg = out / f"{stem}.txt", out / f"{stem}.svg"
    done: dict = {}

    def record() -> None:
        time.sleep(0.8)
        for fmt, path in (("raw", raw), ("flamegraph", svg)):
            r = subprocess.run([pyspy, "record", "--pid", str(pid), "-d", str(int(seconds)), "--native",
                                "--rate", "200", "--format", fmt, "-o", str(path)], capture_output=True, text=True)
            done[fmt] = [r.returncode, (r.stderr or r.stdout)[-200:]]

    t = threading.Thread(target=record)
    t.start()
    load()
    t.join()
    prof: dict = {"seconds": seconds, "svg": svg.name, "raw": raw.name, "py_spy": done}
    if raw.exists():
        prof.update(collapse(raw))
    return prof
