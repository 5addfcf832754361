"""monitoring/: the Prometheus scrape config, the alert rules and the Grafana dashboard,
checked against what `ask2live serve` really exports.

Run once, not per set-up: real `ask2live serve` subprocesses (tests/serve.py), driven
through the public interface (sign-up, a live session, WebSocket chat), then GET /metrics
parsed with prometheus_client's parser. With the production set-up among the test
set-ups (the default), two processes share a database and a Redis prefix of this test's
own (so the remote latency path and the Redis dependency have samples too), dropped and
deleted after; with ASK2LIVE_TEST_SETUPS=embedded, one process on the embedded set-up.

If `promtool` is on PATH the config and rules are checked with it; if `prometheus` is,
a real Prometheus on loopback scrapes the servers and every dashboard query and alert
rule is evaluated by it (each skipped, saying why, otherwise: Debian's `prometheus`
package brings both).
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tornado.httpclient import AsyncHTTPClient

from conftest import EMBEDDED, PRODUCTION, SETUPS
from roomclient import RoomClient
from ask2live.rooms.audience import AUDIENCE_INTERVAL_SECONDS
from serve import ChildProcess, ServeProcess, free_port

MONITORING = Path(__file__).resolve().parent.parent / "monitoring"
PROMETHEUS_YML = MONITORING / "prometheus.yml"
ALERTS_YML = MONITORING / "alerts.yml"
DASHBOARD_JSON = MONITORING / "grafana-dashboard.json"

METRIC_NAME = re.compile(r"\bask2live_[a-z_]+")
# A metric name followed by its label matchers: ask2live_x{a="b", c=~"d"}.
SELECTOR = re.compile(r"\b(ask2live_[a-z_]+)\s*\{([^{}]*)\}")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
# Labels Prometheus adds to every scraped series (the target's, and prometheus.yml's).
TARGET_LABELS = {"job", "instance", "service"}
# Prometheus's own series, not the server's.
PROMETHEUS_METRICS = {"up"}
# Grafana's variables, as a real Prometheus would see them once Grafana substituted them.
GRAFANA_VARIABLES = {"$__rate_interval": "10s", "$instance": ".*"}

TWO_PROCESSES = PRODUCTION in SETUPS


# ---------------------------------------------------------------------------- files


def dashboard() -> dict:
    return json.loads(DASHBOARD_JSON.read_text())


def dashboard_panels(board: dict) -> Iterator[dict]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_exprs(board: dict) -> list[tuple[str, str]]:
    """(where, PromQL) for every panel query and every templating query."""
    exprs = []
    for panel in dashboard_panels(board):
        for target in panel.get("targets", []):
            exprs.append((f"panel {panel['id']} {panel['title']!r} target {target['refId']}", target["expr"]))
    for variable in board.get("templating", {}).get("list", []):
        if variable.get("type") == "query":
            query = variable["query"]
            exprs.append((f"variable ${variable['name']}", query["query"] if isinstance(query, dict) else query))
    return exprs


def alert_rules() -> list[dict]:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads alerts.yml (not in the test extras)")
    return [rule for group in yaml.safe_load(ALERTS_YML.read_text())["groups"] for rule in group["rules"]]


# ---------------------------------------------------------------------------- servers


@dataclass
class Scrape:
    """One GET /metrics: sample name -> [(labels, value)]."""

    samples: dict[str, list[tuple[dict, float]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Scrape":
        scrape = cls()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                scrape.samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
        return scrape

    def value(self, metric: str, /, **labels: str) -> float:
        """The sum over the samples of ``metric`` whose labels include ``labels``."""
        return sum(v for have, v in self.samples.get(metric, []) if all(have.get(k) == x for k, x in labels.items()))

    def label_names(self, name: str) -> set[str]:
        return {k for have, _ in self.samples.get(name, []) for k in have}

    def label_values(self, name: str, label: str) -> set[str]:
        return {have[label] for have, _ in self.samples.get(name, []) if label in have}


@dataclass
class World:
    tmp: Path
    servers: list[ServeProcess] = field(default_factory=list)
    host_token: str = ""
    guest_token: str = ""
    session_id: int = 0
    # Scrapes of each process, taken while the room's sockets were open and after they closed.
    while_open: list[Scrape] = field(default_factory=list)
    after_close: list[Scrape] = field(default_factory=list)

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    def url(self, i: int) -> str:
        return self.servers[i].url

    def scrape(self, i: int) -> Scrape:
        with urllib.request.urlopen(self.url(i) + "/metrics", timeout=5) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            return Scrape.parse(r.read().decode())

    def scrape_all(self) -> list[Scrape]:
        return [self.scrape(i) for i in range(len(self.servers))]

    def start(self) -> None:
        if TWO_PROCESSES:
            first = ServeProcess(PRODUCTION, tmp=self.tmp, name="server0")
            self.servers.append(first)
            self.servers.append(ServeProcess(PRODUCTION, tmp=self.tmp, name="server1", like=first))
        else:
            self.servers.append(ServeProcess(EMBEDDED, tmp=self.tmp, name="server0"))

    def stop(self) -> None:
        for server in reversed(self.servers):  # the first one last: it drops the database and keys
            server.stop()


async def call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = orjson.dumps(body) if body is not None else (b"" if method == "POST" else None)
    r = await AsyncHTTPClient().fetch(base + path, method=method, headers=headers, body=data, raise_error=False)
    return r.code, orjson.loads(r.body) if r.body else None


async def sign_in(base: str, name: str) -> str:
    code, body = await call(base, "POST", "/api/users",
                            {"username": name, "password": "correct horse battery", "display_name": name})
    assert code == 201, body
    code, body = await call(base, "POST", "/api/login", {"username": name, "password": "correct horse battery"})
    assert code == 200, body
    return body["token"]


async def chat_round(world: World, messages: int, pace: float = 0.0, while_open: Any = None) -> None:
    """The host in the room on the first process, the guest on the last; the host chats,
    each message waited for on both sides (the echo, and delivery on the other process)."""
    host = await RoomClient.connect(world.url(0), world.session_id, world.host_token)
    guest = await RoomClient.connect(world.url(len(world.ports) - 1), world.session_id, world.guest_token)
    try:
        for n in range(messages):
            msg_id = f"m-{secrets.token_hex(4)}-{n}"
            await host.chat(f"hello {n}", msg_id)
            await guest.next("chat", timeout=5, client_msg_id=msg_id)
            await asyncio.sleep(pace)
        if while_open is not None:
            # The guest is audience: the room's next `audience` event (at most a second after
            # the join) sets ask2live_room_audience, a series that lasts only while the room
            # has sockets on the process, so the scrape taken now is the one that shows it.
            if not any(f.get("type") == "audience" for f in guest.frames):
                await guest.next("audience", timeout=5)
            while_open()
    finally:
        host.close()
        guest.close()


async def traffic(world: World) -> None:
    base = world.url(0)
    world.host_token = await sign_in(base, f"host_{secrets.token_hex(3)}")
    world.guest_token = await sign_in(base, f"guest_{secrets.token_hex(3)}")
    code, body = await call(base, "POST", "/api/sessions",
                            {"title": "Monitoring", "description": "", "starts_at": "2099-01-01T10:00:00Z"},
                            world.host_token)
    assert code == 201, body
    world.session_id = body["session"]["id"]
    code, body = await call(base, "POST", f"/api/sessions/{world.session_id}/start", None, world.host_token)
    assert code == 200, body
    code, body = await call(base, "POST", f"/api/sessions/{world.session_id}/questions",
                            {"text": "What do the dashboards show?"}, world.guest_token)
    assert code == 201, body
    await call(base, "GET", "/api/no/such/route")

    def scrape_while_open() -> None:
        world.while_open = world.scrape_all()

    await chat_round(world, 3, while_open=scrape_while_open)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def world(tmp_path_factory: Any) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("monitoring"))
    try:
        w.start()
        asyncio.run(traffic(w))

        # Sockets closed (their leave events appended) and every event flushed to the cold
        # store; then one more 2-second dependency check, which refreshes the backlog gauges.
        def settled() -> bool:
            scrapes = w.scrape_all()
            return (all(s.value("ask2live_connections") == 0 for s in scrapes)
                    and sum(s.value("ask2live_writebehind_batch_size_sum") for s in scrapes)
                    == sum(s.value("ask2live_events_total") for s in scrapes))

        # The guest's departure is told in the room's next audience event, up to a second
        # after the socket closed: let it be appended before judging "every event flushed".
        time.sleep(AUDIENCE_INTERVAL_SECONDS + 0.5)
        wait_until(settled, 10, "sockets closed and every event flushed")
        time.sleep(2.5)
        w.after_close = w.scrape_all()
        yield w
    finally:
        w.stop()


# ---------------------------------------------------------------------------- (a) names


def referenced_selectors(text: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    return [(m.group(1), MATCHER.findall(m.group(2))) for m in SELECTOR.finditer(text)]


# Label values a scrape of this set-up cannot have: no Redis, one process.
def missing_here() -> set[tuple[str, str]]:
    return set() if TWO_PROCESSES else {("dependency", "redis"), ("path", "remote")}


def check_references(where: str, text: str, scrapes: list[Scrape]) -> list[str]:
    """Every ask2live_* name in ``text`` is a series some process exports (a histogram's
    _bucket/_count/_sum, a counter's _total: the names PromQL sees), every label matched
    on exists on it, and every label value matched with = occurs in the scrape."""
    exported = {name for scrape in scrapes for name in scrape.samples}
    problems = []
    for name in sorted(set(METRIC_NAME.findall(text))):
        if name not in exported:
            problems.append(f"{where}: {name} is not exported (exported: {', '.join(sorted(exported))})")
    for name, matchers in referenced_selectors(text):
        if name not in exported:
            continue
        names = set().union(*(s.label_names(name) for s in scrapes))
        for label, op, value in matchers:
            if label not in names | TARGET_LABELS:
                problems.append(f"{where}: {name} has no label {label!r} (it has {sorted(names)})")
            elif op == "=" and label not in TARGET_LABELS and (label, value) not in missing_here():
                values = set().union(*(s.label_values(name, label) for s in scrapes))
                if value not in values:
                    problems.append(f"{where}: {name}{{{label}={value!r}}} matches nothing ({sorted(values)})")
    return problems


def test_every_metric_in_the_dashboard_is_exported(world: World) -> None:
    problems = []
    for where, expr in dashboard_exprs(dashboard()):
        # Both scrapes: a room's series (ask2live_room_audience{session}) goes when it closes.
        problems += check_references(where, expr, world.while_open + world.after_close)
        others = {n for n in re.findall(r"\b([a-z_][a-z0-9_]*)\s*\{", expr) if not n.startswith("ask2live_")}
        if others - PROMETHEUS_METRICS:
            problems.append(f"{where}: not a metric of the server's: {sorted(others - PROMETHEUS_METRICS)}")
    assert not problems, "\n".join(problems)
    # The check really looked at something: each exported family is on the dashboard.
    text = json.dumps(dashboard())
    families = {re.sub(r"_(bucket|count|sum|total|created)$", "", n) for n in world.after_close[0].samples}
    families = {f for f in families if f.startswith("ask2live_")}
    unused = {f for f in families if f not in text}
    assert not unused, f"exported but on no panel: {sorted(unused)}"


def test_every_metric_in_the_alert_rules_is_exported(world: World) -> None:
    text = ALERTS_YML.read_text()
    names = set(METRIC_NAME.findall(text))
    assert {"ask2live_message_latency_seconds_bucket", "ask2live_writebehind_backlog",
            "ask2live_dependency_up"} <= names
    problems = check_references("alerts.yml", text, world.after_close)
    assert not problems, "\n".join(problems)


def test_the_reference_check_catches_a_wrong_name_or_label(world: World) -> None:
    scrapes = world.after_close
    assert check_references("x", 'rate(ask2live_events_total{type="chat"}[5m])', scrapes) == []
    assert check_references("x", "rate(ask2live_message_latency_seconds[5m])", scrapes)  # a histogram's bare name
    assert check_references("x", "ask2live_event_total", scrapes)
    assert check_references("x", 'ask2live_events_total{kind="chat"}', scrapes)
    assert check_references("x", 'ask2live_events_total{type="chatt"}', scrapes)


# ---------------------------------------------------------------------------- (b) dashboard


def test_dashboard_is_importable() -> None:
    board = dashboard()
    for key in ("title", "uid", "panels", "schemaVersion", "templating", "time"):
        assert key in board, key
    assert isinstance(board["schemaVersion"], int) and board["schemaVersion"] >= 36
    assert board.get("id") is None  # importing creates it
    assert re.fullmatch(r"[a-zA-Z0-9_-]{1,40}", board["uid"])

    variables = {v["name"]: v for v in board["templating"]["list"]}
    inputs = {i["name"] for i in board.get("__inputs", []) if i.get("type") == "datasource"}
    datasource_vars = {name for name, v in variables.items()
                       if v["type"] == "datasource" and v["query"] == "prometheus"}
    resolvable = {f"${{{name}}}" for name in inputs | datasource_vars} | {f"${name}" for name in datasource_vars}
    assert resolvable, "no __inputs datasource and no datasource variable"

    def check_datasource(where: str, ds: Any) -> None:
        assert isinstance(ds, dict), f"{where}: datasource {ds!r}"
        assert ds.get("type") == "prometheus", f"{where}: {ds}"
        assert ds.get("uid") in resolvable, f"{where}: datasource uid {ds.get('uid')!r} is not in {resolvable}"

    ids, boxes = set(), []
    panels = list(dashboard_panels(board))
    assert len(panels) >= 12
    for panel in panels:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        assert isinstance(panel.get("id"), int) and panel["id"] not in ids, f"{where}: id missing or repeated"
        ids.add(panel["id"])
        assert panel.get("title") and panel.get("type") in {"timeseries", "stat", "gauge", "row", "table",
                                                            "bargauge", "state-timeline", "text"}, where
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys() and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
        boxes.append((where, grid))
        if panel["type"] in ("row", "text"):
            continue
        assert panel.get("description"), f"{where}: say what it measures"
        check_datasource(where, panel["datasource"])
        targets = panel.get("targets")
        assert targets, f"{where}: no queries"
        ref_ids = [t["refId"] for t in targets]
        assert len(set(ref_ids)) == len(ref_ids), f"{where}: repeated refId"
        for target in targets:
            assert target.get("expr", "").strip(), f"{where}: target {target['refId']} has no expr"
            check_datasource(f"{where} {target['refId']}", target.get("datasource", panel["datasource"]))
            assert target["expr"].count("(") == target["expr"].count(")"), f"{where}: unbalanced parentheses"
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1:]:
            overlap = (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                       and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"])
            assert not overlap, f"{a} overlaps {b}"
    for name, variable in variables.items():
        if variable["type"] == "query":
            check_datasource(f"variable {name}", variable["datasource"])

    # What the issue asks the dashboard to show.
    exprs = " ".join(expr for _, expr in dashboard_exprs(board))
    for wanted in ('histogram_quantile(0.5, sum by (le) (rate(ask2live_message_latency_seconds_bucket',
                   "histogram_quantile(0.95, sum by (le) (rate(ask2live_message_latency_seconds_bucket",
                   "histogram_quantile(0.99, sum by (le) (rate(ask2live_message_latency_seconds_bucket",
                   'path="local"', 'path="remote"',
                   'ask2live_events_total{job="ask2live", instance=~"$instance", type="chat"}',
                   "ask2live_frames_sent_total", "sum(ask2live_connections", "sum(ask2live_rooms",
                   "ask2live_broadcast_fanout_bucket", "ask2live_writebehind_backlog",
                   "ask2live_writebehind_oldest_unflushed_seconds", "ask2live_writebehind_batch_size",
                   "ask2live_writebehind_flush_seconds", 'name="insert_events"', "ask2live_history_served_total",
                   "ask2live_rate_limited_total", "ask2live_slow_client_drops_total",
                   "sum by (le, route) (rate(ask2live_http_request_duration_seconds_bucket", "ask2live_dependency_up",
                   "max by (session) (ask2live_room_audience", "ask2live_join_seconds_bucket",
                   "ask2live_frames_per_send_bucket", "histogram_quantile(0.99, sum by (le) (rate(ask2live_welcome_bytes"):
        assert wanted in exprs, wanted


# ---------------------------------------------------------------------------- (c) promtool


def test_alert_rules_are_complete() -> None:
    rules = {rule["alert"]: rule for rule in alert_rules()}
    for name in ("Ask2liveMessageLatencyP99High", "Ask2liveWriteBehindBacklogGrowing", "Ask2liveWriteBehindStalled",
                 "Ask2liveRedisDown", "Ask2liveMySQLDown", "Ask2liveTargetDown"):
        assert name in rules, name
    for name, rule in rules.items():
        assert rule["expr"].strip() and rule.get("for"), name
        assert rule["annotations"].get("summary") and rule["annotations"].get("description"), name
    assert "0.25" in rules["Ask2liveMessageLatencyP99High"]["expr"]
    assert 'dependency="redis"' in rules["Ask2liveRedisDown"]["expr"]
    assert 'dependency="mysql"' in rules["Ask2liveMySQLDown"]["expr"]


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (apt-get install prometheus brings it)")
    return path


def test_promtool_check_config() -> None:
    r = subprocess.run([promtool(), "check", "config", str(PROMETHEUS_YML)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 rule files found" in r.stdout + r.stderr


def test_promtool_check_rules() -> None:
    r = subprocess.run([promtool(), "check", "rules", str(ALERTS_YML)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# ---------------------------------------------------------------------------- (d) values


def test_one_chat_shows_up_in_the_metrics(world: World) -> None:
    first, last = world.while_open[0], world.while_open[-1]
    # While the sockets were open.
    assert first.value("ask2live_connections") >= 1 and last.value("ask2live_connections") >= 1
    assert first.value("ask2live_rooms") >= 1
    # The host chatted on the first process.
    assert first.value("ask2live_events_total", type="chat") >= 3
    assert first.value("ask2live_message_latency_seconds_count", path="local") >= 3
    assert first.value("ask2live_message_latency_seconds_bucket", path="local", le="+Inf") >= 3
    assert first.value("ask2live_broadcast_fanout_count") >= 3
    assert sum(s.value("ask2live_frames_sent_total") for s in world.while_open) >= 6  # to host and guest
    assert sum(s.value("ask2live_history_served_total") for s in world.while_open) >= 2  # two welcomes
    assert first.value("ask2live_http_request_duration_seconds_count", route="UsersHandler", method="POST",
                       status="2xx") >= 2, first.label_values("ask2live_http_request_duration_seconds_count", "route")
    assert first.value("ask2live_http_request_duration_seconds_count", status="4xx") >= 1
    if TWO_PROCESSES:
        # Delivered to the guest on the other process, through Redis.
        assert last.value("ask2live_message_latency_seconds_count", path="remote") >= 3
    for scrape in world.after_close:
        assert scrape.value("ask2live_connections") == 0 and scrape.value("ask2live_rooms") == 0
        assert scrape.value("ask2live_dependency_up", dependency="mysql") == 1
        if TWO_PROCESSES:
            assert scrape.value("ask2live_dependency_up", dependency="redis") == 1
        assert scrape.value("ask2live_writebehind_oldest_unflushed_seconds") == 0
    # Flushed to the cold store: a batch or more, holding every event the room had.
    flushed = sum(s.value("ask2live_writebehind_batch_size_sum") for s in world.after_close)
    appended = sum(s.value("ask2live_events_total") for s in world.after_close)
    assert flushed == appended >= 3 + 4, (flushed, appended)  # chats, session_started, joins, leaves, question
    assert sum(s.value("ask2live_store_interaction_seconds_count", name="insert_events")
               for s in world.after_close) >= 1


# ---------------------------------------------------------------------------- a real Prometheus


def prometheus_api(base: str, path: str, **params: str) -> Any:
    url = f"{base}{path}?{urllib.parse.urlencode(params)}" if params else base + path
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:  # a bad query is a 400 with the error in the body
        body = e.read()
        try:
            return json.loads(body)
        except ValueError:  # 503 "Service Unavailable" while it starts
            return {"status": "unavailable", "error": body.decode(errors="replace")}


def check_dashboard(base: str, problems: list[str]) -> None:
    """Every dashboard query answers with data (while the room is open)."""
    time.sleep(3)  # a few scrapes of the open room
    r = prometheus_api(base, "/api/v1/query", query='sum(ask2live_events_total{job="ask2live", type="chat"})')
    assert r["status"] == "success" and float(r["data"]["result"][0]["value"][1]) >= 11, r
    r = prometheus_api(base, "/api/v1/query", query='histogram_quantile(0.99, sum by (le) '
                       '(rate(ask2live_message_latency_seconds_bucket{path="local"}[10s])))')
    p99 = float(r["data"]["result"][0]["value"][1])
    assert 0 < p99 < 10, r

    empty_allowed = set() if TWO_PROCESSES else {'path="remote"'}
    for where, expr in dashboard_exprs(dashboard()):
        query = expr
        for variable, value in GRAFANA_VARIABLES.items():
            query = query.replace(variable, value)
        assert "$" not in query, f"{where}: unknown variable in {query}"
        if query.startswith("label_values("):  # Grafana's, not PromQL: the series it reads
            query = re.fullmatch(r"label_values\((.*), *\w+\)", query).group(1)
        r = prometheus_api(base, "/api/v1/query", query=query)
        if r.get("status") != "success":
            problems.append(f"{where}: {r.get('error')} in {query}")
        elif not r["data"]["result"] and not any(marker in query for marker in empty_allowed):
            problems.append(f"{where}: no data for {query}")


def test_a_real_prometheus_evaluates_every_dashboard_query_and_alert(world: World, tmp_path: Path) -> None:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not on PATH (apt-get install prometheus)")
    # The committed config, pointed at this test's servers and scraping every second.
    config = PROMETHEUS_YML.read_text()
    example = "          - 127.0.0.1:8888\n          - 127.0.0.1:8889\n"
    assert example in config and "scrape_interval: 5s" in config and "  - alerts.yml" in config
    targets = "".join(f"          - 127.0.0.1:{port}\n" for port in world.ports)
    config = (config.replace(example, targets)
              .replace("scrape_interval: 5s", "scrape_interval: 1s")
              .replace("evaluation_interval: 5s", "evaluation_interval: 1s")
              .replace("scrape_timeout: 4s", "scrape_timeout: 1s")
              .replace("  - alerts.yml", f"  - {ALERTS_YML}"))
    (tmp_path / "prometheus.yml").write_text(config)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    prometheus = ChildProcess([binary, f"--config.file={tmp_path / 'prometheus.yml'}",
                               f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                              tmp_path / "prometheus.log")
    try:
        prometheus.wait_listening(port)

        def all_up() -> bool:
            r = prometheus_api(base, "/api/v1/query", query='up{job="ask2live"} == 1')
            return r.get("status") == "success" and len(r["data"]["result"]) == len(world.ports)

        wait_until(all_up, 20, f"Prometheus to scrape {world.ports}")
        # Chat while it watches, so that rates and quantiles have something to say; and query
        # while the room is still open (a room's audience series goes when it closes).
        problems: list[str] = []
        asyncio.run(chat_round(world, 8, pace=0.25, while_open=lambda: check_dashboard(base, problems)))
        assert not problems, "\n".join(problems)


        # Every rule loaded and evaluated without error; none fires on a healthy pair.
        def evaluated() -> list[dict]:
            groups = prometheus_api(base, "/api/v1/rules")["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(rule.get("lastEvaluation", "").startswith("20") for rule in rules) else []

        wait_until(lambda: evaluated(), 10, "the rules to be evaluated")
        rules = evaluated()
        # Prometheus's own reading of alerts.yml (no PyYAML needed here).
        assert {rule["name"] for rule in rules} == set(re.findall(r"^\s*- alert: (\w+)$", ALERTS_YML.read_text(), re.M))
        for rule in rules:
            assert rule["health"] == "ok" and not rule.get("lastError"), rule
            assert rule["state"] == "inactive", rule
            annotations = rule["annotations"]
            assert rule["duration"] > 0 and annotations.get("summary") and annotations.get("description"), rule
    finally:
        prometheus.stop()

