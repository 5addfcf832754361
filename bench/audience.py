"""Audience scale (issue 10): one room, N listeners joining one server process.

    .venv/bin/python bench/audience.py --levels 1000,5000,10000

For each level: a fresh ``ask2live serve`` (MariaDB + Redis Streams, the production set-up)
with every per-address and per-user limit off, one live session, its host's socket, then N
listener sockets opened by this one process (raw non-blocking sockets, the handshake by
hand with ``Authorization: Bearer``, ``--window`` handshakes in flight, every socket read
by one epoll loop that answers pings). The listeners sign in as ``--users`` accounts in
turn (``--user-sockets-per-room 0`` lets one account hold many sockets).

Measured per level:

- **join time**: the first listener's upgrade request to the last listener's welcome;
- **server RSS per connection**: VmRSS (/proc/<pid>/status) after the joins and a settle,
  less VmRSS with the host alone, divided by N;
- **frames per early listener during the joins**: what the first ``--early`` listeners
  received between their welcome and the last welcome, by type, and per second of it;
- **welcome size**: of the 1st, 100th, 1,000th, ... and the last joiner;
- **chat latency**: ``--chats`` chat lines from the host, ``--chat-gap`` s apart, each
  carrying the sender's CLOCK_MONOTONIC ns; per listener, send → arrival; p50/p99 over
  listeners and the last listener's (max), per chat and over all of them. One process
  reads all N sockets, so its own reading order adds to the latency (reported as is).

``--profile`` records py-spy (raw stacks, ``--native``, 200 Hz) on the server during the
joins of the largest level. Writes a table to stdout, bench/results/audience.json and
bench/results/audience.png.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import math
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from array import array
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (RESULTS, Api, Server, _client_frame, collapse, machine_cpu, mono_ns, percentiles,  # noqa: E402
                    proc_cpu, raise_nofile, wait_quiet)

# Every limit that counts sockets, sign-ups or frames per address or user, off: N sockets
# from one address and a few hundred accounts.
SERVER_FLAGS = ["--max-connections-per-ip", "0", "--user-sockets-per-room", "0", "--signup-limit", "0",
                "--login-address-limit", "0",
                # Cheap password hashes: the sign-ups are set-up, not what is measured.
                "--scrypt-n", "256"]
# The targets.
TARGET_JOIN_10K_S = 30.0
TARGET_CHAT_P99_MS = 1000.0
TARGET_FRAMES_PER_S = 1.0
TARGET_WELCOME_RATIO = 2.0
TARGET_RSS_PER_CONN_KIB = 16.0
CHAT_MARK = b'"text":"B'
WELCOME = b'{"type":"welcome"'
TYPE_RE = re.compile(rb'"type":"([a-z_]+)"')


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Conn:
    __slots__ = ("sock", "buf", "state", "index", "welcome_bytes", "welcomed_ns", "requested_ns", "frames",
                 "types", "chat_ns", "count")

    def __init__(self, sock: socket.socket, index: int, count: bool) -> None:
        self.sock = sock
        self.buf = b""
        self.state = "handshake"
        self.index = index
        self.welcome_bytes = 0
        self.welcomed_ns = 0
        self.requested_ns = mono_ns()
        self.frames = 0
        self.types: dict[str, int] | None = {} if count else None  # by event type: early listeners only
        self.chat_ns: dict[int, int] = {}  # chat send ns → arrival ns
        self.count = count


class Room:
    """All the sockets of one level, in one epoll loop."""

    def __init__(self, port: int, sid: int) -> None:
        self.port = port
        self.sid = sid
        self.ep = select.epoll()
        self.by_fd: dict[int, Conn] = {}
        self.conns: list[Conn] = []
        self.handshaking = 0
        self.closed = 0
        self.errors: list[str] = []

    def open(self, token: str, count: bool) -> Conn:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall((f"GET /ws/sessions/{self.sid} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                   f"Authorization: Bearer {token}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        s.setblocking(False)
        c = Conn(s, len(self.conns), count)
        self.conns.append(c)
        self.by_fd[s.fileno()] = c
        self.ep.register(s.fileno(), select.EPOLLIN)
        self.handshaking += 1
        return c

    def poll(self, timeout: float) -> None:
        for fd, _ in self.ep.poll(timeout):
            self._read(self.by_fd[fd])

    def _read(self, c: Conn) -> None:
        try:
            data = c.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        now = mono_ns()
        if not data:
            self.ep.unregister(c.sock.fileno())
            if c.state == "handshake":
                self.handshaking -= 1
                self.errors.append(f"socket {c.index} closed during the handshake")
            c.state = "closed"
            self.closed += 1
            return
        buf = c.buf + data if c.buf else data
        if c.state == "handshake":
            head_end = buf.find(b"\r\n\r\n")
            if head_end < 0:
                c.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.errors.append(f"socket {c.index}: {buf.split(chr(13).encode(), 1)[0]!r}")
                self.handshaking -= 1
                c.state = "refused"
                return
            c.state = "upgraded"
            buf = buf[head_end + 4:]
        i, n = 0, len(buf)
        while n - i >= 2:
            ln = buf[i + 1] & 127
            h = 2
            if ln == 126:
                if n - i < 4:
                    break
                ln, h = (buf[i + 2] << 8) | buf[i + 3], 4
            elif ln == 127:
                if n - i < 10:
                    break
                ln, h = int.from_bytes(buf[i + 2:i + 10], "big"), 10
            end = i + h + ln
            if end > n:
                break
            op = buf[i] & 15
            if op == 1:
                if c.state == "upgraded":
                    if not buf.startswith(WELCOME, i + h):
                        self.errors.append(f"socket {c.index}: expected the welcome, got {buf[i + h:i + h + 80]!r}")
                    c.state = "joined"
                    c.welcome_bytes = ln
                    c.welcomed_ns = now
                    self.handshaking -= 1
                else:
                    c.frames += 1
                    j = buf.find(CHAT_MARK, i + h, end)
                    if j >= 0:
                        k = buf.find(b'"', j + 9, end)
                        c.chat_ns[int(buf[j + 9:k])] = now
                    if c.types is not None:
                        m = TYPE_RE.search(buf, i + h, min(end, i + h + 200))
                        t = m.group(1).decode() if m else "?"
                        c.types[t] = c.types.get(t, 0) + 1
            elif op == 9:
                try:
                    c.sock.send(_client_frame(bytes(buf[i + h:end]), 0xA))
                except OSError:
                    pass
            elif op == 8:
                self.errors.append(f"socket {c.index}: closed by the server "
                                   f"({(buf[i + h] << 8 | buf[i + h + 1]) if ln >= 2 else 0})")
            i = end
        c.buf = buf[i:] if i < n else b""

    def pump(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.poll(min(left, 0.05))

    def send_chat(self, c: Conn, seq: int) -> int:
        sent = mono_ns()
        c.sock.sendall(_client_frame(b'{"type":"chat","text":"B%d","client_msg_id":"a-%d"}' % (sent, seq)))
        return sent

    def close(self) -> None:
        for c in self.conns:
            try:
                c.sock.close()
            except OSError:
                pass
        self.ep.close()


def scrape(port: int) -> str:
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/metrics")
        text = c.getresponse().read().decode()
        c.close()
        return text
    except OSError:
        return ""


def histogram(text: str, name: str) -> dict:
    """count, mean and bucket-bound p50/p99 of one unlabelled histogram in a scrape."""
    buckets = [(float("inf") if m.group(1) == "+Inf" else float(m.group(1)), float(m.group(2)))
               for m in re.finditer(rf'^{name}_bucket{{le="([^"]+)"}} ([0-9.e+]+)$', text, re.M)]
    count = re.search(rf"^{name}_count ([0-9.e+]+)$", text, re.M)
    total = re.search(rf"^{name}_sum ([0-9.e+]+)$", text, re.M)
    if not buckets or not count or not float(count.group(1)):
        return {}
    n = float(count.group(1))

    def q(p: float):
        for le, c in sorted(buckets):
            if c >= p * n:
                return le if le != float("inf") else None
        return None

    return {"count": int(n), "mean": round(float(total.group(1)) / n, 6), "p50_le": q(0.5), "p99_le": q(0.99)}


def start_profile(pid: int, raw: Path) -> subprocess.Popen | None:
    pyspy = shutil.which("py-spy", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if pyspy is None:
        print("(py-spy not installed: no profile)", file=sys.stderr)
        return None
    return subprocess.Popen([pyspy, "record", "--pid", str(pid), "--native", "--rate", "200", "--format", "raw",
                             "-o", str(raw)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop_profile(proc: subprocess.Popen | None, raw: Path) -> dict:
    if proc is None:
        return {"error": "py-spy not installed"}
    proc.send_signal(signal.SIGINT)  # py-spy writes its file on Ctrl-C
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    out: dict = {"raw": raw.name, "py_spy": [proc.returncode, (err or b"").decode(errors="replace")[-200:]]}
    if raw.exists():
        out.update(collapse(raw))
    return out


def run_level(n: int, args: argparse.Namespace, profile: bool, out: Path) -> dict:
    server = Server(f"audience {n}", SERVER_FLAGS, redis=True)
    room = None
    doc: dict = {"listeners": n}
    try:
        server.start()
        api = Api(server.port)
        t0 = time.monotonic()
        host = api.token("host")
        users = [api.token(f"listener{i}") for i in range(args.users)]
        doc["signup_login_s"] = round(time.monotonic() - t0, 1)
        sid = api.live_session(host, f"audience {n}")
        room = Room(server.port, sid)
        host_conn = room.open(host, count=False)
        while host_conn.state != "joined":
            room.poll(0.1)
            if room.errors:
                raise RuntimeError(room.errors[0])
        room.pump(2.0)  # the host's join event, the room's first audience round
        rss0 = vm_rss_kib(server.pid)
        doc["other_load_before_cores"] = wait_quiet(args.wait_quiet, exclude=[server.pid]) if args.wait_quiet else None
        cpu0 = proc_cpu(server.pid)
        busy0, _ = machine_cpu()
        client0 = proc_cpu(os.getpid())
        mono0 = time.monotonic()
        prof_raw = out / "audience-profile.txt"
        prof = start_profile(server.pid, prof_raw) if profile else None
        if prof is not None:
            time.sleep(1.0)  # py-spy attached
        t_start = mono_ns()
        next_report = time.monotonic() + 5
        opened = 0
        progress_at, joined_then = time.monotonic(), 0
        stuck: list[Conn] = []
        while opened < n or room.handshaking:
            while opened < n and room.handshaking < args.window:
                room.open(users[opened % len(users)], count=opened < args.early)
                opened += 1
            room.poll(0.05)
            if room.errors:
                raise RuntimeError(f"{room.errors[:3]}\n{server.log_tail()}")
            joined = opened - room.handshaking
            if joined != joined_then:
                progress_at, joined_then = time.monotonic(), joined
            elif time.monotonic() - progress_at > args.join_timeout:
                # The server upgraded these sockets but never sent their welcome: a join that
                # hangs. Counted and reported; the run goes on without them.
                stuck = [c for c in room.conns if c.state != "joined"]
                print(f"[{n}] {len(stuck)} joins got no welcome in {args.join_timeout:g} s "
                      f"(states {sorted({c.state for c in stuck})}); going on without them", file=sys.stderr)
                for c in stuck:
                    room.ep.unregister(c.sock.fileno())
                    c.state = "stuck"
                room.handshaking = 0
            if time.monotonic() >= next_report:
                print(f"[{n}] {joined}/{n} joined, {(mono_ns() - t_start) / 1e9:.1f} s", file=sys.stderr)
                next_report += 5
        listeners = [c for c in room.conns[1:] if c.state == "joined"]
        doc["stuck_joins"] = len(stuck)
        doc["stuck_join_indexes"] = [c.index for c in stuck][:50]
        t_end = max(c.welcomed_ns for c in listeners)
        join_s = (t_end - t_start) / 1e9
        doc["join_s"] = round(join_s, 2)
        doc["joins_per_s"] = round(len(listeners) / join_s, 1)
        doc["server_cpu_during_joins_s"] = round(proc_cpu(server.pid) - cpu0, 2)
        doc["server_cpu_us_per_join"] = round(doc["server_cpu_during_joins_s"] / n * 1e6)
        # Other work on this 2-core machine during the joins (all busy CPU less the server's
        # and this process's): other sessions' tests and load ran at the same time.
        busy1, _ = machine_cpu()
        wall = time.monotonic() - mono0
        doc["joins_cpu_cores"] = {
            "server": round(doc["server_cpu_during_joins_s"] / wall, 2),
            "client": round((proc_cpu(os.getpid()) - client0) / wall, 2),
            "other": round(max(0.0, (busy1 - busy0) - doc["server_cpu_during_joins_s"]
                               - (proc_cpu(os.getpid()) - client0)) / wall, 2)}
        if prof is not None:
            doc["profile"] = stop_profile(prof, prof_raw)
        print(f"[{n}] all {n} joined in {join_s:.1f} s ({doc['joins_per_s']}/s, server "
              f"{doc['server_cpu_us_per_join']} µs CPU per join)", file=sys.stderr)

        # What each early listener got between its own welcome and the last one.
        early = []
        for c in listeners[:args.early]:
            span = (t_end - c.welcomed_ns) / 1e9
            early.append({"index": c.index, "frames": c.frames, "seconds": round(span, 2),
                          "frames_per_s": round(c.frames / span, 2) if span > 0 else None, "types": dict(c.types)})
        doc["early_listeners"] = early
        doc["early_frames_per_s_max"] = max((e["frames_per_s"] or 0) for e in early)
        # One `audience` event per second: a span of s seconds may see up to ceil(s) + 1 of them
        # (one at each end), so a short span's frames/s alone would overstate it.
        doc["early_frames_over_allowance"] = max(e["frames"] - (math.ceil(e["seconds"]) + 1) for e in early)
        doc["early_frames_max"] = max(e["frames"] for e in early)
        sizes = [c.welcome_bytes for c in listeners]
        m = len(listeners)
        marks = sorted({1, 100, 1000, 5000, 10000, m} & set(range(1, m + 1)))
        doc["welcome_bytes"] = {str(k): sizes[k - 1] for k in marks}
        doc["welcome_bytes_first"], doc["welcome_bytes_last"] = sizes[0], sizes[-1]
        doc["welcome_last_over_100th"] = round(sizes[-1] / sizes[99], 3) if n >= 100 else None
        doc["welcome_curve"] = [[i + 1, sizes[i]] for i in range(0, m, max(1, m // 200))] + [[m, sizes[-1]]]

        # Idle: the last audience event out, then the memory held by N open sockets.
        room.pump(args.settle)
        rss1 = vm_rss_kib(server.pid)
        doc["rss_kib"] = {"host_only": rss0, "after": rss1}
        doc["rss_per_conn_kib"] = round((rss1 - rss0) / n, 2)
        doc["open_listeners"] = sum(c.state == "joined" for c in listeners)
        print(f"[{n}] RSS {rss0:,} → {rss1:,} KiB: {doc['rss_per_conn_kib']} KiB per connection; early listeners "
              f"got ≤ {doc['early_frames_per_s_max']} frames/s ({doc['early_frames_max']} frames) during the joins; "
              f"welcome {sizes[0]:,} B first, {sizes[-1]:,} B last", file=sys.stderr)

        # Chat: host → every listener.
        frames_before = [c.frames for c in listeners]
        sends = []
        for i in range(args.chats):
            sends.append(room.send_chat(host_conn, i))
            room.pump(args.chat_gap)
        room.pump(1.0)
        per_chat = []
        all_lat = array("q")
        missing = 0
        for sent in sends:
            lat = array("q", (c.chat_ns[sent] - sent for c in listeners if sent in c.chat_ns))
            miss = len(listeners) - len(lat)
            missing += miss
            all_lat.extend(lat)
            p = percentiles(lat, missing=miss, qs=(50, 99))
            per_chat.append({"p50_ms": p["p50"], "p99_ms": p["p99"], "last_ms": p["max"], "missing": miss})
        doc["chat"] = {"per_chat": per_chat, "latency_ms": percentiles(all_lat, missing=missing, qs=(50, 99)),
                       "missing": missing,
                       "frames_per_listener": round((sum(c.frames for c in listeners) - sum(frames_before))
                                                    / len(listeners), 2)}
        lat = doc["chat"]["latency_ms"]
        print(f"[{n}] chat → all listeners: p50 {lat['p50']} ms, p99 {lat['p99']} ms, last {lat['max']} ms "
              f"(missing {missing})", file=sys.stderr)
        text = scrape(server.port)
        doc["server_metrics"] = {name: histogram(text, name) for name in
                                 ("ask2live_join_seconds", "ask2live_welcome_bytes", "ask2live_frames_per_send")}
        m = re.search(rf'^ask2live_room_audience{{session="{sid}"}} ([0-9.e+]+)$', text, re.M)
        doc["server_metrics"]["ask2live_room_audience"] = float(m.group(1)) if m else None
        doc["closed"] = room.closed
    finally:
        if room is not None:
            room.close()
        server.cleanup(keep_logs=args.keep_logs)
    return doc


def targets(levels: list[dict]) -> dict:
    big = max(levels, key=lambda d: d["listeners"])
    n = big["listeners"]
    out = {
        "at_listeners": n,
        "join_under_30s": {"target": TARGET_JOIN_10K_S, "measured": big["join_s"],
                           "met": big["join_s"] < TARGET_JOIN_10K_S},
        "chat_p99_under_1s": {"target_ms": TARGET_CHAT_P99_MS, "measured_ms": big["chat"]["latency_ms"]["p99"],
                              "met": big["chat"]["latency_ms"]["p99"] is not None
                              and big["chat"]["latency_ms"]["p99"] < TARGET_CHAT_P99_MS},
        "join_costs_others_at_most_1_frame_per_s": {
            "target": TARGET_FRAMES_PER_S, "measured": max(d["early_frames_per_s_max"] for d in levels),
            "met": all(d["early_frames_over_allowance"] <= 0 for d in levels),
            "rule": "each early listener got at most ceil(seconds) + 1 frames between its welcome and the last"},
        "last_welcome_at_most_2x_100th": {"target": TARGET_WELCOME_RATIO, "measured": big["welcome_last_over_100th"],
                                          "met": (big["welcome_last_over_100th"] or 0) <= TARGET_WELCOME_RATIO},
        "rss_per_idle_conn_le_16kib": {"target_kib": TARGET_RSS_PER_CONN_KIB, "measured_kib": big["rss_per_conn_kib"],
                                       "met": big["rss_per_conn_kib"] <= TARGET_RSS_PER_CONN_KIB},
    }
    if n < 10000:
        out["note"] = f"the largest level run was {n}, not 10,000"
    return out


def table(levels: list[dict]) -> str:
    cols = ["listeners", "join s", "joins/s", "srv µs/join", "RSS KiB/conn", "early frames/s (max)",
            "welcome 1st B", "welcome 100th B", "welcome last B", "chat p50 ms", "chat p99 ms", "chat last ms",
            "other cores (joins)"]
    rows = [cols]
    for d in levels:
        lat = d["chat"]["latency_ms"]
        rows.append([f"{d['listeners']:,}", f"{d['join_s']:.1f}", f"{d['joins_per_s']:,.0f}",
                     f"{d['server_cpu_us_per_join']:,}", f"{d['rss_per_conn_kib']:.1f}",
                     f"{d['early_frames_per_s_max']:.2f}", f"{d['welcome_bytes_first']:,}",
                     f"{d['welcome_bytes'].get('100', 0):,}", f"{d['welcome_bytes_last']:,}",
                     str(lat["p50"]), str(lat["p99"]), str(lat["max"]), str(d["joins_cpu_cores"]["other"])])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def chart(levels: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ns = [d["listeners"] for d in levels]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.6))
    ax = axes[0]
    ax.plot(ns, [d["join_s"] for d in levels], "o-", label="all joined, s")
    ax.axhline(TARGET_JOIN_10K_S, color="green", ls="--", lw=1, label="target 30 s at 10,000")
    ax.set_xlabel("listeners")
    ax.set_ylabel("s")
    ax.set_title("time for all to join", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[1]
    ax.plot(ns, [d["rss_per_conn_kib"] for d in levels], "o-", label="server RSS per connection")
    ax.axhline(TARGET_RSS_PER_CONN_KIB, color="green", ls="--", lw=1, label="target 16 KiB")
    ax.set_xlabel("listeners")
    ax.set_ylabel("KiB")
    ax.set_ylim(bottom=0)
    ax.set_title("memory per idle connection", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[2]
    for d in levels:
        xs, ys = zip(*d["welcome_curve"])
        ax.plot(xs, [y / 1024 for y in ys], label=f"{d['listeners']:,} listeners")
    ax.set_xlabel("joiner #")
    ax.set_ylabel("welcome KiB")
    ax.set_ylim(bottom=0)
    ax.set_title("welcome size by join order", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[3]
    for q, style in (("p50", "o-"), ("p99", "s-"), ("max", "x--")):
        ax.plot(ns, [d["chat"]["latency_ms"][q] or 0 for d in levels], style, label=q if q != "max" else "last")
    ax.axhline(TARGET_CHAT_P99_MS, color="green", ls="--", lw=1, label="target p99 1 s")
    ax.set_xlabel("listeners")
    ax.set_ylabel("host send → listener receive, ms")
    ax.set_yscale("log")
    ax.set_title("one chat line to every listener", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle("ASK2LIVE audience scale: one room, one server process (2 cores shared with the client)",
                 fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--levels", default="1000,5000,10000", help="listeners per run, one fresh server each")
    p.add_argument("--users", type=int, default=200, help="accounts the listeners sign in as, in turn")
    p.add_argument("--window", type=int, default=64, help="handshakes in flight at a time")
    p.add_argument("--early", type=int, default=10, help="the first this many listeners count their frames by type")
    p.add_argument("--settle", type=float, default=3.0, help="s after the last join before RSS is read")
    p.add_argument("--join-timeout", type=float, default=30.0,
                   help="s without a new welcome after which the joins still waiting are counted as stuck")
    p.add_argument("--chats", type=int, default=5)
    p.add_argument("--chat-gap", type=float, default=1.5, help="s between the chat lines")
    p.add_argument("--profile", action="store_true", help="py-spy the server during one level's joins")
    p.add_argument("--profile-level", type=int, default=0, help="the level --profile records (default: the largest)")
    p.add_argument("--wait-quiet", type=float, default=0,
                   help="before each level's joins, wait up to this many s for other work on the machine to stop")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args()
    raise_nofile(1 << 20)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    ns = [int(x) for x in args.levels.split(",") if x.strip()]
    levels: list[dict] = []
    for n in ns:
        levels.append(run_level(n, args, args.profile and n == (args.profile_level or max(ns)), out))
        doc = write(levels, args, started, out)  # after every level: a long run keeps what it measured
    print(table(levels))
    for k, v in doc["targets"].items():
        print(f"{k}: {v}")
    if any("profile" in d for d in levels):
        prof = next(d["profile"] for d in levels if "profile" in d)
        if "self" in prof:
            print("profile (joins), top self time of the busy samples: "
                  + ", ".join(f"{x['function']} {x['pct_of_busy']}%" for x in prof["self"][:8]))
    print(f"wrote {out / 'audience.json'} and {out / 'audience.png'}")
    return 0


def write(levels: list[dict], args: argparse.Namespace, started: float, out: Path) -> dict:
    doc = {
        "what": "ASK2LIVE audience scale: one room, N listeners joining one server process (issue 10)",
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "params": vars(args),
        "notes": {
            "join_s": "first listener's upgrade request to the last listener's welcome, --window in flight",
            "rss_per_conn_kib": "server VmRSS after the joins and --settle s, less VmRSS with the host alone, / N",
            "early_listeners": "frames each of the first --early listeners got from its welcome to the last welcome",
            "chat": "host → listener latency over every listener and chat line, sender's CLOCK_MONOTONIC in the text;"
                    " one client process reads all sockets, so its reading order adds to the figures",
        },
        "levels": levels,
        "targets": targets(levels),
    }
    (out / "audience.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    chart(levels, out / "audience.png")
    return doc


if __name__ == "__main__":
    sys.exit(main())
