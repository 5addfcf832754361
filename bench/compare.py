"""The old design against the new, side by side, same machine, same run.

    .venv/bin/python bench/compare.py --rooms 4 --clients 25 --rate 200 --seconds 20 --sweep 100,200,400,800

For each mode, ``--persistence sync`` (every event inserted into MySQL and the room's recent
messages re-read before the broadcast) and the default (Redis Streams + write-behind), a fresh
``ask2live serve`` on a free port with a database, MySQL user and Redis prefix of its own;
N rooms × M WebSocket clients in separate processes; chat at R messages/s in total, spread
over every client. Reported per mode: send→receive latency over every receiver (the sender's
own echo included), delivered messages/s, MySQL statements and InnoDB disk writes per chat
message (SHOW GLOBAL STATUS deltas, and the server's own MySQL user from USER_STATISTICS),
and server CPU per delivered message. ``--sweep`` repeats the window at each rate to find
where sync saturates, and reports both modes there.

Writes a table to stdout, bench/results/compare.json and bench/results/compare.png.
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

from common import (RESULTS, WRITE_COMS, Api, ClientPool, Server, Snapshot, UserStat, WorkerSpec,  # noqa: E402
                    cpu_delta, merge, open_clients, percentiles, profile_server, raise_nofile, wait_quiet)

MODES = ("sync", "writebehind")
UNLIMITED = ["--rate", "1000000", "--rate-burst", "1000000", "--user-rate", "0", "--user-sockets-per-room", "0"]


def server_for(mode: str, args: argparse.Namespace) -> Server:
    if mode == "sync":
        return Server("sync", ["--persistence", "sync", *UNLIMITED], redis=False)
    return Server("writebehind", ["--persistence", "writebehind", "--flush-interval-ms", str(args.flush_interval_ms),
                                  *UNLIMITED], redis=True)


def per_message(a: dict, b: dict, keys, sent: int) -> dict:
    return {k: round((b[k] - a[k]) / sent, 4) for k in keys if k in a and k in b} if sent else {}


def summarize(mode: str, rate: float, seconds: float, members: dict[int, int], merged: dict,
              before: Snapshot, after: Snapshot, idle: Snapshot) -> dict:
    sent = merged["sent"]
    expected = sum(n * members[r] for r, n in merged["sent_room"].items())
    received = merged["chat"]
    lost = max(0, expected - received)
    lat = percentiles(merged["lat"], missing=lost)
    cpu = cpu_delta(before, after)
    status_keys = sorted(set(before.status) & set(after.status))
    delta = {k: after.status[k] - before.status[k] for k in status_keys}
    writes = sum(delta.get(k, 0) for k in WRITE_COMS)
    out = {
        "mode": mode,
        "rate": rate,
        "seconds": seconds,
        "sent": sent,
        "sent_per_s": round(sent / seconds, 1),
        "skipped_by_clients": merged["skipped"],
        "expected_deliveries": expected,
        "delivered": received,
        "lost_after_drain": lost,
        "delivered_per_s": round(merged["frames_in_window"] / seconds, 1),
        "latency_ms": lat,
        # Over the deliveries that did arrive only: a lower bound where messages were lost.
        "latency_delivered_ms": percentiles(merged["lat"]),
        "errors": merged["errors"],
        "error_samples": merged["error_samples"],
        "closes": merged["closes"],
        "status_delta": delta,
        "per_message": {
            "mysql_write_statements": round(writes / sent, 4) if sent else None,
            **per_message(before.status, after.status, status_keys, sent),
        },
        "cpu": cpu,
        "server_cpu_us_per_delivered": round(cpu["server_cpu_s"] / received * 1e6, 2) if received else None,
        "server_cpu_us_per_sent": round(cpu["server_cpu_s"] / sent * 1e6, 1) if sent else None,
    }
    # Net of the background: the global counters' rate over the quiet stretch before the window
    # (the bench server idle, so that is everyone else), times the window's length.
    quiet = before.t - idle.t
    window = after.t - before.t
    background = {k: (before.status[k] - idle.status[k]) / quiet for k in status_keys if k in idle.status}
    out["background_per_s"] = {k: round(v, 2) for k, v in background.items()}
    net = {k: delta[k] - background.get(k, 0) * window for k in status_keys}
    net_writes = sum(net.get(k, 0) for k in WRITE_COMS)
    out["net_per_message"] = {"mysql_write_statements": round(net_writes / sent, 4) if sent else None,
                              **({k: round(v / sent, 4) for k, v in net.items()} if sent else {})}
    if before.userstat is not None and after.userstat is not None and sent:
        us = {k: after.userstat[k] - before.userstat[k] for k in after.userstat}
        out["server_user_delta"] = us
        out["per_message"]["server_write_statements"] = round(us["update_commands"] / sent, 4)
        out["per_message"]["server_select_statements"] = round(us["select_commands"] / sent, 4)
    return out


def saturated(run: dict) -> bool:
    """Sync is saturated when its queue grows: the p99 of what it delivered passes 250 ms, or it
    delivers under 90% of what it is offered within the window (late, not lost: losses are
    counted apart, since the sync log also drops messages below saturation; see the notes)."""
    offered = run["expected_deliveries"] / run["seconds"] if run["seconds"] else 0
    delivered_lost = run["lost_after_drain"] / run["seconds"] if run["seconds"] else 0
    p99 = run["latency_delivered_ms"]["p99"]
    return (p99 is None or p99 > 250
            or (offered and run["delivered_per_s"] < 0.9 * (offered - delivered_lost)))


def run_mode(mode: str, args: argparse.Namespace, plan: list[tuple[str, float, float]]) -> list[dict]:
    server = server_for(mode, args)
    runs: list[dict] = []
    pool = None
    try:
        server.start()
        api = Api(server.port)
        host = api.token("host")
        users = [host] + [api.token(f"user{i}") for i in range(args.users - 1)]
        sids = [api.live_session(host, f"bench room {r}") for r in range(args.rooms)]
        # Room-interleaved, dealt round-robin: every client process holds clients of every room.
        sockets = [(r, sids[r], users[(r * args.clients + m) % len(users)])
                   for m in range(args.clients) for r in range(args.rooms)]
        t0 = time.monotonic()
        opened = open_clients(server.port, sockets)
        specs = []
        for w in range(args.workers):
            mine = opened[w::args.workers]
            specs.append(WorkerSpec(mine, sample=set(range(len(mine))), senders=list(range(len(mine))),
                                    name=f"{mode[:2]}{w}"))
        members = {r: args.clients for r in range(args.rooms)}
        pool = ClientPool(specs)
        print(f"[{mode}] server pid {server.pid} on :{server.port}; {len(sockets)} clients joined in "
              f"{time.monotonic() - t0:.1f} s", file=sys.stderr)
        time.sleep(1.0)  # the joins' events flushed, the room quiet
        for label, rate, seconds in plan:
            if label == "sweep" and mode == "sync" and any(r["label"] == "sweep" and r["saturated"] for r in runs):
                print(f"[{mode}] {rate:g} msg/s skipped: saturated at a lower rate", file=sys.stderr)
                runs.append({"mode": mode, "label": label, "rate": rate, "skipped": "saturated at a lower rate"})
                continue
            share = [rate * len(s.conns) / len(sockets) for s in specs]
            # A quiet stretch first: the global counters' background rate (anyone else on
            # this MariaDB), subtracted from the window's deltas for the "net" figures.
            others = wait_quiet(args.wait_quiet, exclude=[server.pid, *pool.pids]) if args.wait_quiet else None
            idle = Snapshot.take(server, pool.pids)
            time.sleep(args.baseline)
            before = Snapshot.take(server, pool.pids)
            edges = []
            results = pool.run_phase(share, seconds, quiet=1.0, drain=args.drain,
                                     at_start=lambda: edges.append(Snapshot.take(server, pool.pids, db=False)),
                                     at_end=lambda: edges.append(Snapshot.take(server, pool.pids, db=False)))
            time.sleep(args.flush_interval_ms / 1000 * 2)
            after = Snapshot.take(server, pool.pids)
            run = summarize(mode, rate, seconds, members, merge(results), before, after, idle)
            # Utilisation over the sending window alone (the figures above include the drain).
            run["cpu_window"] = cpu_delta(edges[0], edges[1])
            run["label"] = label
            run["other_load_before_cores"] = others
            run["saturated"] = saturated(run)
            runs.append(run)
            lat = run["latency_ms"]
            print(f"[{mode}] {label} {rate:g} msg/s: sent {run['sent']}, delivered {run['delivered']}"
                  f"/{run['expected_deliveries']}, p50 {lat['p50']} p99 {lat['p99']} ms, "
                  f"writes/msg {run['per_message'].get('mysql_write_statements')}, "
                  f"server {run['cpu_window']['server_cores']} cores, other {run['cpu_window']['other_cores']}"
                  f"{' SATURATED' if run['saturated'] else ''}",
                  file=sys.stderr)
            if server.proc.poll() is not None:
                raise RuntimeError(f"server died:\n{server.log_tail()}")
            time.sleep(1.0)
        if args.profile:
            share = [args.profile_rate * len(s.conns) / len(sockets) for s in specs]
            prof = profile_server(server.pid, Path(args.out), f"compare-profile-{mode}", args.profile_seconds,
                                  lambda: pool.run_phase(share, 2 * args.profile_seconds + 3, quiet=1.0,
                                                         drain=args.drain))
            prof["rate"] = args.profile_rate
            runs.append({"mode": mode, "label": "profile", "rate": args.profile_rate, "skipped": "profile run",
                         "profile": prof})
            print(f"[{mode}] profile at {args.profile_rate:g} msg/s: {prof.get('samples')} samples -> "
                  f"{prof.get('svg')}", file=sys.stderr)
    finally:
        if pool is not None:
            pool.stop()
        server.cleanup(keep_logs=args.keep_logs)
        if args.keep_logs:
            print(f"[{mode}] server log: {server.log_path}", file=sys.stderr)
    return runs


# ---------------------------------------------------------------------------- output

def fmt(v, digits=1):
    if v is None:
        return "lost"
    if isinstance(v, float):
        return f"{v:.{digits}f}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(runs: list[dict]) -> str:
    cols = [("mode", lambda r: r["mode"]), ("run", lambda r: r["label"]), ("msg/s", lambda r: f"{r['rate']:g}"),
            ("deliv/s", lambda r: fmt(r["delivered_per_s"], 0)),
            ("p50 ms", lambda r: fmt(r["latency_ms"]["p50"], 2)), ("p95 ms", lambda r: fmt(r["latency_ms"]["p95"], 2)),
            ("p99 ms", lambda r: fmt(r["latency_ms"]["p99"], 2)),
            ("lost", lambda r: str(r["lost_after_drain"])),
            ("srv writes/msg", lambda r: fmt(r["per_message"].get("server_write_statements"), 3)),
            ("writes/msg", lambda r: fmt(r["net_per_message"].get("mysql_write_statements"), 3)),
            ("Com_insert/msg", lambda r: fmt(r["net_per_message"].get("Com_insert"), 3)),
            ("data_writes/msg", lambda r: fmt(r["net_per_message"].get("Innodb_data_writes"), 3)),
            ("fsyncs/msg", lambda r: fmt(r["net_per_message"].get("Innodb_data_fsyncs"), 3)),
            ("log_writes/msg", lambda r: fmt(r["net_per_message"].get("Innodb_log_writes"), 3)),
            ("srv µs/deliv", lambda r: fmt(r["server_cpu_us_per_delivered"], 1)),
            ("srv cores", lambda r: fmt(r["cpu_window"]["server_cores"], 2)),
            ("client cores", lambda r: fmt(r["cpu_window"]["clients_cores"], 2)),
            ("mysqld cores", lambda r: fmt(r["cpu_window"]["mysqld_cores"], 2)),
            ("redis cores", lambda r: fmt(r["cpu_window"]["redis_cores"], 2)),
            ("other cores", lambda r: fmt(r["cpu_window"]["other_cores"], 2))]
    rows = [[name for name, _ in cols]]
    for r in runs:
        if "skipped" in r:
            continue
        rows.append([f(r) for _, f in cols])
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def reduction(old, new):
    if old in (None, 0) or new is None:
        return None
    return round(100 * (1 - new / old), 1)


def verdicts(runs: list[dict]) -> dict:
    by = {(r["mode"], r["label"], r["rate"]): r for r in runs if "skipped" not in r}
    out: dict = {}
    main_sync = next((r for r in runs if r["mode"] == "sync" and r["label"] == "main"), None)
    main_wb = next((r for r in runs if r["mode"] == "writebehind" and r["label"] == "main"), None)
    if main_sync and main_wb:
        out["main"] = {
            "rate": main_sync["rate"],
            "write_statements_reduction_pct": reduction(main_sync["net_per_message"]["mysql_write_statements"],
                                                        main_wb["net_per_message"]["mysql_write_statements"]),
            "server_write_statements_reduction_pct": reduction(
                main_sync["per_message"].get("server_write_statements"),
                main_wb["per_message"].get("server_write_statements")),
            "p99_reduction_pct": reduction(main_sync["latency_ms"]["p99"], main_wb["latency_ms"]["p99"]),
        }
    sweep_sync = [r for r in runs if r["mode"] == "sync" and r["label"] == "sweep" and "skipped" not in r]
    sat = next((r for r in sweep_sync if r["saturated"]), None)
    if sat is None and main_sync and main_sync["saturated"]:
        sat = main_sync
    if sat is not None:
        wb = by.get(("writebehind", sat["label"], sat["rate"]))
        p99_sync = sat["latency_ms"]["p99"]
        # Where sync lost deliveries its p99 over all receivers is unbounded; the p99 over the
        # deliveries that arrived is a lower bound of it, and the conservative figure to compare.
        p99_sync_delivered = sat["latency_delivered_ms"]["p99"]
        wb_p99 = wb["latency_ms"]["p99"] if wb else None
        out["saturation"] = {
            "rate": sat["rate"],
            "run": sat["label"],
            "sync_p99_ms": p99_sync,
            "sync_p99_delivered_only_ms": p99_sync_delivered,
            "sync_lost": sat["lost_after_drain"],
            "sync_expected": sat["expected_deliveries"],
            "writebehind_p99_ms": wb_p99,
            "writebehind_lost": wb["lost_after_drain"] if wb else None,
            "p99_reduction_pct": reduction(p99_sync if p99_sync is not None else p99_sync_delivered, wb_p99),
            "write_statements_reduction_pct": reduction(sat["net_per_message"]["mysql_write_statements"],
                                                        wb["net_per_message"]["mysql_write_statements"]) if wb else None,
            "server_write_statements_reduction_pct": reduction(
                sat["per_message"].get("server_write_statements"),
                wb["per_message"].get("server_write_statements")) if wb else None,
        }
    else:
        out["saturation"] = {"rate": None, "note": "sync did not saturate at any rate tried"}
    lossy = next((r for r in sweep_sync if r["lost_after_drain"] > 0.01 * max(1, r["expected_deliveries"])), None)
    if lossy is not None:
        wb = by.get(("writebehind", lossy["label"], lossy["rate"]))
        out["sync_first_lossy"] = {
            "rate": lossy["rate"],
            "sync_lost_pct": round(100 * lossy["lost_after_drain"] / lossy["expected_deliveries"], 1),
            "sync_p99_delivered_only_ms": lossy["latency_delivered_ms"]["p99"],
            "writebehind_p99_ms": wb["latency_ms"]["p99"] if wb else None,
            "writebehind_lost": wb["lost_after_drain"] if wb else None,
            "note": "the sync log broadcasts by a high-water mark: an event whose INSERT commits after a later "
                    "event's re-read is stored but never broadcast (see bench/README.md)",
        }
    m, s = out.get("main", {}), out.get("saturation", {})
    writes = s.get("server_write_statements_reduction_pct") or s.get("write_statements_reduction_pct") \
        or m.get("server_write_statements_reduction_pct")
    out["targets"] = {
        "write_statements_95pct_fewer": None if writes is None else writes >= 95,
        "p99_90pct_lower_at_sync_saturation": None if s.get("p99_reduction_pct") is None else s["p99_reduction_pct"] >= 90,
    }
    return out


def chart(runs: list[dict], v: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"sync": "#d62728", "writebehind": "#1f77b4"}
    real = [r for r in runs if "skipped" not in r]
    main = [r for r in real if r["label"] == "main"]
    sweep = [r for r in real if r["label"] == "sweep"]
    sat_rate = v.get("saturation", {}).get("rate")
    sat = [r for r in real if sat_rate is not None and r["rate"] == sat_rate and r["label"] == v["saturation"]["run"]]
    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    width = 0.38

    def latency_panel(ax, group, title):
        qs = ["p50", "p95", "p99"]
        top = 1.0
        for i, r in enumerate(group):
            vals = [r["latency_ms"][q] for q in qs]
            lost = [x is None for x in vals]
            vals = [r["latency_delivered_ms"][q] if x is None else x for q, x in zip(qs, vals)]
            top = max(top, *vals)
            xs = [j + (i - 0.5) * width for j in range(len(qs))]
            bars = ax.bar(xs, vals, width, label=r["mode"], color=colors[r["mode"]])
            for b, val, l in zip(bars, vals, lost):
                ax.annotate(f"≥{val:.0f} (lost)" if l else (f"{val:.1f}" if val >= 1 else f"{val:.2f}"),
                            (b.get_x() + b.get_width() / 2, val), ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(qs)), qs)
        ax.set_yscale("log")
        ax.set_ylim(top=top * 4)
        ax.set_ylabel("send → receive latency, ms (log)")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper left")

    def db_panel(ax, group, title):
        keys = [("server_write_statements", "server's write\nstatements"), ("Com_insert", "Com_insert"),
                ("Innodb_data_fsyncs", "Innodb_data\n_fsyncs"), ("Innodb_log_writes", "Innodb_log\n_writes"),
                ("Innodb_data_writes", "Innodb_data\n_writes")]
        for i, r in enumerate(group):
            vals = [max(0.0, (r["per_message"] if k.startswith("server") else r["net_per_message"]).get(k) or 0)
                    for k, _ in keys]
            xs = [j + (i - 0.5) * width for j in range(len(keys))]
            bars = ax.bar(xs, [max(x, 1e-4) for x in vals], width, label=r["mode"], color=colors[r["mode"]])
            for b, val in zip(bars, vals):
                ax.annotate(f"{val:.3g}", (b.get_x() + b.get_width() / 2, max(val, 1e-4)), ha="center",
                            va="bottom", fontsize=8)
        ax.set_xticks(range(len(keys)), [k for _, k in keys], fontsize=8)
        ax.set_yscale("log")
        ax.set_ylim(1e-4, 5)
        ax.set_ylabel("per chat message (log)")
        ax.set_title(title, fontsize=10)
        ax.legend(loc="upper right")

    if main:
        latency_panel(axes[0][0], main, f"latency at {main[0]['rate']:g} msg/s (main run)")
        db_panel(axes[1][0], main, f"MySQL / InnoDB per chat message at {main[0]['rate']:g} msg/s")
    if sat:
        latency_panel(axes[0][1], sat, f"latency at {sat[0]['rate']:g} msg/s, where sync saturates")
    elif sweep:
        axes[0][1].set_visible(False)
    ax = axes[1][1]
    if sweep:
        for mode in MODES:
            pts = sorted((r["rate"], r) for r in sweep if r["mode"] == mode)
            if not pts:
                continue
            xs = [x for x, _ in pts]
            ys = [r["latency_ms"]["p99"] if r["latency_ms"]["p99"] is not None else r["latency_delivered_ms"]["p99"]
                  for _, r in pts]
            ax.plot(xs, ys, "-", color=colors[mode], label=f"{mode} p99")
            for x, (_, r), y in zip(xs, pts, ys):
                lost = r["latency_ms"]["p99"] is None
                ax.plot([x], [y], "o", color=colors[mode], mfc="white" if lost else colors[mode])
                if lost:
                    share = 100 * r["lost_after_drain"] / max(1, r["expected_deliveries"])
                    ax.annotate(f"≥ ({share:.0f}% lost)", (x, y), textcoords="offset points", xytext=(-70, 4),
                                color=colors[mode], fontsize=8)
        ax.set_xlabel("offered chat messages/s (all rooms)")
        ax.set_ylabel("p99 latency, ms (log)")
        ax.set_yscale("log")
        ax.set_title("p99 across the sweep (hollow: deliveries lost; p99 of those delivered)", fontsize=10)
        ax.legend(loc="upper left")
    else:
        ax.set_visible(False)
    fig.suptitle("ASK2LIVE: sync (old design) vs Redis Streams + write-behind, same machine, same run", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rooms", type=int, default=4, help="N rooms")
    p.add_argument("--clients", type=int, default=25, help="M clients per room (each also sends)")
    p.add_argument("--rate", type=float, default=200, help="R chat messages/s in total (the main run)")
    p.add_argument("--seconds", type=float, default=20, help="measured window of the main run")
    p.add_argument("--sweep", default="", help="comma-separated rates for the saturation sweep, e.g. 100,200,400,800")
    p.add_argument("--sweep-seconds", type=float, default=10)
    p.add_argument("--baseline", type=float, default=3, help="quiet seconds before each window (background rate)")
    p.add_argument("--drain", type=float, default=15, help="max seconds to wait for late deliveries after a window")
    p.add_argument("--workers", type=int, default=2, help="client processes")
    p.add_argument("--users", type=int, default=10, help="distinct users the clients sign in as")
    p.add_argument("--flush-interval-ms", type=int, default=100, help="write-behind interval of the default mode")
    p.add_argument("--modes", default=",".join(MODES))
    p.add_argument("--wait-quiet", type=float, default=0,
                   help="before each window, wait up to this many s for other work on the machine to stop")
    p.add_argument("--profile", action="store_true", help="py-spy each server under --profile-rate")
    p.add_argument("--profile-rate", type=float, default=1000)
    p.add_argument("--profile-seconds", type=float, default=10)
    p.add_argument("--server-python", default=sys.executable,
                   help="interpreter that runs the server (with the project's dependencies installed)")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--keep-logs", action="store_true")
    p.add_argument("--replot", action="store_true", help="only redraw compare.png from compare.json")
    args = p.parse_args()
    Server.python = args.server_python
    raise_nofile()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.replot:
        import orjson

        doc = orjson.loads((out / "compare.json").read_bytes())
        chart(doc["runs"], doc["verdicts"], out / "compare.png")
        print(table(doc["runs"]))
        return 0
    plan = [("main", args.rate, args.seconds)]
    plan += [("sweep", float(x), args.sweep_seconds) for x in args.sweep.split(",") if x.strip()]
    runs: list[dict] = []
    started = time.time()
    with UserStat() as userstat:
        for mode in args.modes.split(","):
            runs += run_mode(mode, args, plan)
    v = verdicts(runs)
    doc = {
        "what": "ASK2LIVE persistence comparison: sync (old design) vs writebehind (Redis Streams + write-behind)",
        "command": " ".join([os.path.relpath(sys.executable), *sys.argv]),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "duration_s": round(time.time() - started, 1),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "params": {k: getattr(args, k) for k in ("rooms", "clients", "rate", "seconds", "sweep", "sweep_seconds",
                                                 "drain", "workers", "users", "flush_interval_ms", "server_python")},
        "notes": {
            "latency": "send→receive over every receiver (sender's echo included), CLOCK_MONOTONIC shared by the "
                       "client processes; deliveries still missing after the drain count as infinitely late",
            "mysql_write_statements": "global Com_insert+Com_insert_select+Com_update+Com_delete+Com_replace delta "
                                      "per chat message sent (includes any other client of this MariaDB)",
            "server_write_statements": "the bench server's own MySQL user (USER_STATISTICS.UPDATE_COMMANDS) per chat "
                                       "message" + ("" if userstat.available else " (unavailable)"),
            "disk": "Innodb_* are global SHOW GLOBAL STATUS deltas; MariaDB 10.8+ has no Innodb_os_log_fsyncs (its "
                    "redo-log fsyncs are counted in Innodb_data_fsyncs)",
            "cpu": "from /proc/<pid>/stat utime+stime over the window and its drain; µs per delivered message = "
                   "server CPU / messages received by all clients",
            "net_per_message": "global counter deltas minus their background rate (measured over --baseline quiet "
                               "seconds just before the window, the bench server idle) times the window",
        },
        "runs": runs,
        "verdicts": v,
    }
    import orjson

    (out / "compare.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
    chart(runs, v, out / "compare.png")
    print(table(runs))
    print()
    if "main" in v:
        m = v["main"]
        print(f"at {m['rate']:g} msg/s: MySQL write statements per message {m['write_statements_reduction_pct']}% fewer "
              f"(global), {m['server_write_statements_reduction_pct']}% fewer (server's own user); "
              f"p99 {m['p99_reduction_pct']}% lower")
    s = v["saturation"]
    if s.get("rate") is not None:
        sync_p99 = (f"{s['sync_p99_ms']} ms" if s["sync_p99_ms"] is not None else
                    f"unbounded ({s['sync_lost']} of {s['sync_expected']} deliveries lost; ≥ "
                    f"{s['sync_p99_delivered_only_ms']} ms over those delivered)")
        print(f"sync saturates at {s['rate']:g} msg/s: p99 sync {sync_p99} vs writebehind "
              f"{s['writebehind_p99_ms']} ms ({s['p99_reduction_pct']}% lower); write statements "
              f"{s['server_write_statements_reduction_pct'] or s['write_statements_reduction_pct']}% fewer")
    else:
        print(s["note"])
    if "sync_first_lossy" in v:
        x = v["sync_first_lossy"]
        print(f"sync first drops over 1% of deliveries at {x['rate']:g} msg/s ({x['sync_lost_pct']}% never "
              f"broadcast; p99 of the rest {x['sync_p99_delivered_only_ms']} ms; writebehind p99 "
              f"{x['writebehind_p99_ms']} ms, {x['writebehind_lost']} lost)")
    print(f"targets: {v['targets']}")
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
