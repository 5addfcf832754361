"""Fan-out: one room, 1,000 listeners on one server process.

    .venv/bin/python bench/fanout.py --listeners 1000 --rate 20 --seconds 20

For ``--broadcast frame`` (the event framed once, raw non-blocking send per socket) and
``--broadcast write_message`` (Tornado's per-client write_message, the baseline), in the
same run: a fresh ``ask2live serve`` (MariaDB + Redis, production set-up) per mode; the
listeners in several client processes (~250 raw sockets each, frames counted from their
headers, latency parsed on every ``--sample-every``-th socket); one sender (the host)
posting chat at a steady rate. Reported: send→receive latency p50/p95/p99 over listeners,
delivered frames/s, server CPU µs per delivered frame, the client processes' CPU, and the
ceiling: the rate ramped up until the server saturates, with the most frames/s delivered.
``--profile`` records py-spy on the server at ``--profile-rate`` (raw stacks for the
headline, and an SVG flame graph).

Writes a table to stdout, bench/results/fanout.json and bench/results/fanout.png.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (RESULTS, Api, ClientPool, Server, Snapshot, WorkerSpec, cpu_delta, merge,  # noqa: E402
                    open_clients, percentiles, profile_server, raise_nofile, wait_quiet)

MODES = ("frame", "write_message")
UNLIMITED = ["--rate", "1000000", "--rate-burst", "1000000", "--user-rate", "0", "--user-sockets-per-room", "0"]


def measure(pool: ClientPool, server: Server, rate: float, seconds: float, n_listeners: int,
            drain: float = 10.0, idle_cores: float = 0.0, quiet_wait: float = 0.0) -> dict:
    others = wait_quiet(quiet_wait, exclude=[server.pid, *pool.pids]) if quiet_wait else None
    before = Snapshot.take(server, pool.pids, db=False)
    edges = []
    results = pool.run_phase([rate] + [0] * (len(pool.specs) - 1), seconds, quiet=0.5, drain=drain,
                             at_start=lambda: edges.append(Snapshot.take(server, pool.pids, db=False)),
                             at_end=lambda: edges.append(Snapshot.take(server, pool.pids, db=False)))
    after = Snapshot.take(server, pool.pids, db=False)
    window = cpu_delta(edges[0], edges[1])
    sender, listeners = results[0], merge(results[1:])
    sent = sender["sent"]
    sampled = sum(len(spec.sample) for spec in pool.specs[1:])
    missing = max(0, sampled * sent - listeners["chat"])
    cpu = cpu_delta(before, after)
    frames_all = listeners["frames"] + sender["frames"]  # the senders' echoes are frames written too
    offered = rate * n_listeners
    m0, m1 = before.metrics, after.metrics
    written = (m1.get("ask2live_frames_sent_total", 0) - m0.get("ask2live_frames_sent_total", 0)) if m1 else None
    lost = max(0, sent * n_listeners - listeners["frames"])
    client_cpu = cpu["clients_cpu_s"]
    return {
        "rate": rate,
        "seconds": seconds,
        "other_load_before_cores": others,
        "sent": sent,
        "sent_per_s": round(sent / seconds, 1),
        "listeners": n_listeners,
        "offered_frames_per_s": offered,
        "listener_frames": listeners["frames"],
        "listener_frames_lost": lost,
        "delivered_frames_per_s": round(listeners["frames_in_window"] / seconds),
        "latency_ms": percentiles(listeners["lat"], missing=missing),
        "latency_samples": len(listeners["lat"]),
        "sender_echo_latency_ms": percentiles(sender["lat_arr"]),
        "cpu": cpu,
        # Utilisation over the sending window alone (cpu above also covers the drain).
        "cpu_window": window,
        "server_cpu_us_per_frame": round(cpu["server_cpu_s"] / frames_all * 1e6, 2) if frames_all else None,
        # Less what the server spends idle with the same connections open, over the same wall time.
        "server_marginal_us_per_frame": round(max(0.0, cpu["server_cpu_s"] - idle_cores * cpu["wall_s"]) / frames_all
                                              * 1e6, 2) if frames_all else None,
        "clients_cpu_us_per_frame": round(client_cpu / frames_all * 1e6, 2) if frames_all else None,
        "server_frames_written": written,
        "slow_drops": (m1.get("ask2live_slow_client_drops_total", 0) - m0.get("ask2live_slow_client_drops_total", 0))
        if m1 else None,
        "closes": listeners["closes"] + sender["closes"],
        "close_codes": listeners["close_codes"],
        "errors": sender["errors"] + listeners["errors"],
        "error_samples": sender["error_samples"] + listeners["error_samples"],
        "skipped_by_sender": sender["skipped"],
        "open_listeners": listeners["open"],
    }


def saturated(step: dict) -> bool:
    return (step["cpu_window"]["server_cores"] >= 0.93
            or step["delivered_frames_per_s"] < 0.9 * step["offered_frames_per_s"]
            or step["listener_frames_lost"] > 0.01 * step["sent"] * step["listeners"]
            or step["closes"] > 0)


def profile(server: Server, pool: ClientPool, rate: float, seconds: float, out: Path, tag: str,
            n_listeners: int) -> dict:
    """py-spy on the server under load: raw stacks first (for the headline), then the SVG."""
    steps = []
    prof = profile_server(server.pid, out, f"fanout-profile{tag}", seconds,
                          lambda: steps.append(measure(pool, server, rate, 2 * seconds + 3, n_listeners)))
    step = steps[0]
    prof.update(rate=rate, under_load={k: step[k] for k in ("delivered_frames_per_s", "server_cpu_us_per_frame",
                                                            "latency_ms")})
    return prof


def run_mode(mode: str, args: argparse.Namespace, out: Path) -> dict:
    server = Server(f"fanout {mode}", ["--broadcast", mode, *UNLIMITED], redis=True)
    pool = None
    doc: dict = {"mode": mode}
    try:
        server.start()
        api = Api(server.port)
        host = api.token("host")
        users = [api.token(f"listener{i}") for i in range(args.users)]
        sid = api.live_session(host, f"fan-out {mode}")
        # Join order is the order the server's fan-out writes the members in: the sender
        # first, then the listeners; every sample_every-th listener (spread evenly over that
        # order) goes to the one latency process, the rest to count-only processes.
        plan = [(0, sid, host)] * args.senders + [(0, sid, users[j % len(users)]) for j in range(args.listeners)]
        t0 = time.monotonic()
        opened = open_clients(server.port, plan, progress=mode)
        senders, listeners = opened[:args.senders], opened[args.senders:]
        sampled = listeners[::args.sample_every]
        rest = [o for j, o in enumerate(listeners) if j % args.sample_every]
        count_procs = max(1, args.procs - 1)
        specs = [WorkerSpec(senders, sample=set(range(len(senders))), senders=list(range(len(senders))),
                            name="sender"),
                 WorkerSpec(sampled, sample=set(range(len(sampled))), name="latency")]
        specs += [WorkerSpec(rest[i::count_procs], batch_ms=args.batch_ms, name=f"count{i}")
                  for i in range(count_procs)]
        pool = ClientPool(specs)
        doc["join_seconds"] = round(time.monotonic() - t0, 1)
        print(f"[{mode}] server pid {server.pid}; {args.listeners} listeners in {args.procs} processes joined in "
              f"{doc['join_seconds']} s", file=sys.stderr)
        time.sleep(3)  # the joins' own broadcasts finish
        # The cost of holding the connections with nothing to send (pings, presence, the
        # Redis reader): subtracted for the marginal per-frame figure.
        a = Snapshot.take(server, pool.pids, db=False)
        time.sleep(args.idle_seconds)
        b = Snapshot.take(server, pool.pids, db=False)
        idle = cpu_delta(a, b)
        doc["idle"] = idle
        print(f"[{mode}] idle with {args.listeners} connections: server {idle['server_cores']} cores, "
              f"clients {idle['clients_cores']}, other {idle['other_cores']}", file=sys.stderr)
        steady = measure(pool, server, args.rate, args.seconds, args.listeners, idle_cores=idle["server_cores"],
                         quiet_wait=args.wait_quiet)
        steady["saturated"] = saturated(steady)
        doc["steady"] = steady
        report(mode, "steady", steady)
        if args.profile and mode in args.profile_modes.split(","):
            tag = "" if mode == "frame" else f"-{mode}"
            doc["profile"] = profile(server, pool, args.profile_rate, args.profile_seconds, out, tag, args.listeners)
            print(f"[{mode}] profile: {doc['profile'].get('samples')} samples -> {doc['profile'].get('svg')}",
                  file=sys.stderr)
        ramp = []
        for rate in [float(x) for x in args.ramp.split(",") if x.strip()]:
            step = measure(pool, server, rate, args.ramp_seconds, args.listeners, idle_cores=idle["server_cores"],
                           quiet_wait=args.wait_quiet)
            step["saturated"] = saturated(step)
            ramp.append(step)
            report(mode, "ramp", step)
            if server.proc.poll() is not None:
                raise RuntimeError(f"server died:\n{server.log_tail()}")
            if step["saturated"] or step["closes"]:
                break
            time.sleep(0.5)
        doc["ramp"] = ramp
        if ramp:
            best = max(ramp, key=lambda s: s["delivered_frames_per_s"])
            kept_up = [s for s in ramp if not s["saturated"]]
            fast = [s for s in [doc["steady"]] + ramp if not s["saturated"] and s["latency_ms"]["p99"] is not None
                    and s["latency_ms"]["p99"] < 50]
            doc["ceiling"] = {
                "max_delivered_frames_per_s": best["delivered_frames_per_s"],
                "at_rate": best["rate"],
                "server_cores_there": best["cpu_window"]["server_cores"],
                "server_cpu_us_per_frame_there": best["server_cpu_us_per_frame"],
                "highest_rate_kept_up": max((s["rate"] for s in kept_up), default=None),
                "highest_frames_per_s_with_p99_under_50ms": max((s["delivered_frames_per_s"] for s in fast),
                                                                default=None),
                "cpu_bound_estimate_frames_per_s": round(1e6 / best["server_cpu_us_per_frame"])
                if best["server_cpu_us_per_frame"] else None,
            }
    finally:
        server.stop()
        if pool is not None:
            pool.stop()
        server.cleanup(keep_logs=args.keep_logs)
    return doc


def report(mode: str, what: str, s: dict) -> None:
    lat = s["latency_ms"]
    print(f"[{mode}] {what} {s['rate']:g} msg/s: {s['delivered_frames_per_s']:,} frames/s delivered "
          f"(offered {s['offered_frames_per_s']:,.0f}), p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} ms, "
          f"server {s['server_cpu_us_per_frame']} µs/frame at {s['cpu_window']['server_cores']} cores, clients "
          f"{s['cpu_window']['clients_cores']} cores, other {s['cpu_window']['other_cores']}"
          f"{', lost ' + str(s['listener_frames_lost']) if s['listener_frames_lost'] else ''}"
          f"{', closes ' + str(s['closes']) if s['closes'] else ''}", file=sys.stderr)


def fmt(v, d=1):
    if v is None:
        return "lost"
    if isinstance(v, float):
        return f"{v:,.{d}f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def table(docs: list[dict]) -> str:
    cols = ["mode", "phase", "msg/s", "offered f/s", "delivered f/s", "p50 ms", "p95 ms", "p99 ms", "lost",
            "srv µs/frame", "marginal µs", "srv cores", "client cores", "client µs/frame", "other cores"]
    rows = [cols]
    for d in docs:
        for label, s in [("steady", d.get("steady"))] + [("ramp", s) for s in d.get("ramp", [])]:
            if not s:
                continue
            rows.append([d["mode"], label + (" *" if s.get("saturated") else ""), f"{s['rate']:g}",
                         fmt(s["offered_frames_per_s"], 0), fmt(s["delivered_frames_per_s"]),
                         fmt(s["latency_ms"]["p50"], 2), fmt(s["latency_ms"]["p95"], 2), fmt(s["latency_ms"]["p99"], 2),
                         fmt(s["listener_frames_lost"]), fmt(s["server_cpu_us_per_frame"], 2),
                         fmt(s["server_marginal_us_per_frame"], 2),
                         fmt(s["cpu_window"]["server_cores"], 2), fmt(s["cpu_window"]["clients_cores"], 2),
                         fmt(s["clients_cpu_us_per_frame"], 2), fmt(s["cpu_window"]["other_cores"], 2)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(* = saturated: the server at ≥93% of a core, or <90% of the offered frames delivered)"


def ratios(docs: list[dict]) -> dict:
    by = {d["mode"]: d for d in docs}
    f, w = by.get("frame"), by.get("write_message")
    if not f or not w or "steady" not in f or "steady" not in w:
        return {}

    def ratio(a, b):
        return round(a / b, 2) if a and b else None

    out = {
        "cpu_per_frame_write_message_over_frame": ratio(w["steady"]["server_cpu_us_per_frame"],
                                                        f["steady"]["server_cpu_us_per_frame"]),
        "p99_write_message_over_frame": ratio(w["steady"]["latency_ms"]["p99"], f["steady"]["latency_ms"]["p99"]),
    }
    if "ceiling" in f and "ceiling" in w:
        out["ceiling_frame_over_write_message"] = ratio(f["ceiling"]["max_delivered_frames_per_s"],
                                                        w["ceiling"]["max_delivered_frames_per_s"])
    return out


def targets(docs: list[dict]) -> dict:
    f = next((d for d in docs if d["mode"] == "frame"), None)
    if not f or "steady" not in f:
        return {}
    s = f["steady"]
    return {
        "ceiling_ge_80000_frames_per_s": (f.get("ceiling", {}).get("max_delivered_frames_per_s") or 0) >= 80000,
        "server_cpu_le_12us_per_frame": s["server_cpu_us_per_frame"] is not None and s["server_cpu_us_per_frame"] <= 12,
        "server_marginal_cpu_le_12us_per_frame": s["server_marginal_us_per_frame"] is not None
        and s["server_marginal_us_per_frame"] <= 12,
        "p99_lt_50ms_at_rate": s["latency_ms"]["p99"] is not None and s["latency_ms"]["p99"] < 50,
    }


def chart(docs: list[dict], path: Path, args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"frame": "#1f77b4", "write_message": "#ff7f0e"}
    fig, axes = plt.subplots(1, 3, figsize=(18, 4.8))
    ax = axes[0]
    qs = ["p50", "p95", "p99"]
    width = 0.38
    for i, d in enumerate(x for x in docs if "steady" in x):
        vals = [d["steady"]["latency_ms"][q] or 0 for q in qs]
        xs = [j + (i - 0.5) * width for j in range(len(qs))]
        bars = ax.bar(xs, vals, width, label=f"--broadcast {d['mode']}", color=colors[d["mode"]])
        for b, v in zip(bars, vals):
            ax.annotate(f"{v:.1f}", (b.get_x() + b.get_width() / 2, v), ha="center", va="bottom", fontsize=8)
    ax.axhline(50, color="gray", ls=":", lw=1)
    ax.set_xticks(range(len(qs)), qs)
    ax.set_ylabel("send → receive, ms")
    ax.set_title(f"latency, {args.listeners} listeners, {args.rate:g} msg/s", fontsize=10)
    ax.legend()
    ax = axes[1]
    top = 0
    for d in docs:
        ramp = d.get("ramp", [])
        if ramp:
            xs = [s["offered_frames_per_s"] for s in ramp]
            ys = [s["delivered_frames_per_s"] for s in ramp]
            top = max(top, max(xs))
            ax.plot(xs, ys, "o-", color=colors[d["mode"]], label=f"{d['mode']} (max {max(ys):,})")
    ax.plot([0, top], [0, top], color="gray", ls=":", lw=1, label="offered")
    ax.axhline(80000, color="green", ls="--", lw=1, label="target 80,000")
    ax.set_xlabel("offered frames/s (msg/s × listeners)")
    ax.set_ylabel("delivered frames/s")
    ax.set_title("ceiling of one process", fontsize=10)
    ax.legend(fontsize=8)
    ax = axes[2]
    for d in docs:
        ramp = ([d["steady"]] if "steady" in d else []) + d.get("ramp", [])
        ramp = sorted(ramp, key=lambda s: s["rate"])
        if ramp:
            ax.plot([s["delivered_frames_per_s"] for s in ramp], [s["server_cpu_us_per_frame"] for s in ramp], "o-",
                    color=colors[d["mode"]], label=f"{d['mode']} server")
            ax.plot([s["delivered_frames_per_s"] for s in ramp], [s["clients_cpu_us_per_frame"] for s in ramp], "x--",
                    color=colors[d["mode"]], alpha=0.6, label=f"{d['mode']} clients")
    ax.axhline(12, color="green", ls="--", lw=1, label="target 12 µs")
    ax.set_xlabel("delivered frames/s")
    ax.set_ylabel("CPU µs per delivered frame")
    ax.set_ylim(bottom=0)
    ax.set_title("CPU per frame", fontsize=10)
    ax.legend(fontsize=8)
    fig.suptitle("ASK2LIVE fan-out: one room, one server process (2 cores shared with the clients)", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listeners", type=int, default=1000)
    p.add_argument("--procs", type=int, default=4,
                   help="listener client processes: one latency process and procs-1 count-only ones")
    p.add_argument("--users", type=int, default=20, help="distinct users the listeners sign in as")
    p.add_argument("--rate", type=float, default=20, help="chat messages/s of the steady phase")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--senders", type=int, default=4,
                   help="sender connections (the host's), in one process, taking turns at the rate")
    p.add_argument("--ramp", default="30,40,60,80,100,120,140,160,200", help="messages/s of the ramp steps")
    p.add_argument("--ramp-seconds", type=float, default=5)
    p.add_argument("--idle-seconds", type=float, default=5, help="idle measurement before the steady phase")
    p.add_argument("--sample-every", type=int, default=10,
                   help="every n-th listener (in join order) is read at once and its latency parsed")
    p.add_argument("--batch-ms", type=float, default=50,
                   help="the other listeners' processes poll every this many ms and only count frames")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--profile", action="store_true", help="py-spy the server under load")
    p.add_argument("--profile-modes", default="frame")
    p.add_argument("--profile-rate", type=float, default=60)
    p.add_argument("--profile-seconds", type=float, default=10)
    p.add_argument("--wait-quiet", type=float, default=0,
                   help="before each phase, wait up to this many s for other work on the machine to stop")
    p.add_argument("--server-python", default=sys.executable,
                   help="interpreter that runs the server (with the project's dependencies installed)")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--keep-logs", action="store_true")
    args = p.parse_args()
    Server.python = args.server_python
    raise_nofile()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    docs = [run_mode(mode, args, out) for mode in args.modes.split(",")]
    doc = {
        "what": "ASK2LIVE fan-out: one room, N listeners, one server process; --broadcast frame vs write_message",
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "params": vars(args),
        "notes": {
            "latency": "send→receive, sender's CLOCK_MONOTONIC ns in the chat text, read by the listener on arrival; "
                       "over every --sample-every-th listener socket",
            "server_cpu_us_per_frame": "server utime+stime over the window and its drain / frames received by all "
                                       "clients (listeners and the sender's echo)",
            "setup": "MariaDB + Redis Streams (the production set-up); --senders connections of the host take turns "
                     "sending, then the listeners; frames counted at the listeners",
        },
        "modes": docs,
        "ratios": ratios(docs),
        "targets": targets(docs),
    }
    import orjson

    (out / "fanout.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    chart(docs, out / "fanout.png", args)
    print(table(docs))
    for d in docs:
        if "ceiling" in d:
            c = d["ceiling"]
            print(f"{d['mode']}: ceiling {c['max_delivered_frames_per_s']:,} frames/s delivered (at {c['at_rate']:g} "
                  f"msg/s, server {c['server_cores_there']} cores, {c['server_cpu_us_per_frame_there']} µs/frame)")
        if "profile" in d and "self" in d["profile"]:
            print(f"{d['mode']}: profile, top self time of the busy samples: "
                  + ", ".join(f"{x['function']} {x['pct_of_busy']}%" for x in d["profile"]["self"][:6]))
    print(f"ratios: {doc['ratios']}")
    print(f"targets: {doc['targets']}")
    print(f"wrote {out / 'fanout.json'} and {out / 'fanout.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
