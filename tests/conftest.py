"""Every test runs a real server (pytest-tornado's http_server, on a real port) on each
of the two set-ups, the ``setup`` fixture: "embedded" is the default (a SQLite file in a
temporary directory, the in-process room log), "production" is MariaDB (in a database of
its own for this test run, created here and dropped at the end) and Redis (under a key
prefix of the test's own, deleted after it).

Set ASK2LIVE_TEST_SETUPS=embedded (or production) to run one set-up only; set
ASK2LIVE_TEST_MYSQL to point at another server (default mysql://root@127.0.0.1:3306).
Tests that run `ask2live serve` itself start it with tests/serve.py.
"""

from __future__ import annotations

import os
import secrets
from typing import Any

import orjson
import pymysql
import pytest
from tornado.httpclient import HTTPClientError

from ask2live.app import make_app, running_services
from ask2live.config import Config
from ask2live.store.engines import parse_mysql_url
from roomclient import RoomClient

EMBEDDED, PRODUCTION = "embedded", "production"
SETUPS = [s for s in os.environ.get("ASK2LIVE_TEST_SETUPS", f"{EMBEDDED},{PRODUCTION}").split(",") if s]
if set(SETUPS) - {EMBEDDED, PRODUCTION}:
    raise pytest.UsageError(f"ASK2LIVE_TEST_SETUPS={','.join(SETUPS)}: the set-ups are {EMBEDDED} and {PRODUCTION}")
if "ASK2LIVE_TEST_ENGINES" in os.environ:
    raise pytest.UsageError("ASK2LIVE_TEST_ENGINES is now ASK2LIVE_TEST_SETUPS (sqlite is embedded, mysql production)")
# What GET /healthz calls each set-up's store.
STORE_NAMES = {EMBEDDED: "sqlite", PRODUCTION: "mysql"}
MYSQL_SERVER = os.environ.get("ASK2LIVE_TEST_MYSQL", "mysql://root@127.0.0.1:3306")
REDIS_URL = os.environ.get("ASK2LIVE_TEST_REDIS", "redis://127.0.0.1:6379/0")
TABLES = ["users", "auth_tokens", "sessions", "reservations", "questions", "question_votes", "id_sequences", "room_outbox",
          "room_events"]
# Cheap scrypt for tests: the cost parameter is stored in each hash, and production
# hashing is the same code with a larger N.
TEST_SCRYPT_N = 2**8


def mysql_connect(database: str | None = None) -> pymysql.Connection:
    params = parse_mysql_url(MYSQL_SERVER + "/x")
    params.pop("db")
    return pymysql.connect(**params, database=database, charset="utf8mb4", autocommit=True)


@pytest.fixture(scope="session")
def mysql_url() -> Any:
    """A database of this test run's own, dropped when the run ends."""
    if PRODUCTION not in SETUPS:
        yield None
        return
    name = f"ask2live_test_{os.getpid()}_{secrets.token_hex(3)}"
    yield f"{MYSQL_SERVER}/{name}"
    drop_database(name)


def clear_mysql(url: str) -> None:
    conn = mysql_connect(parse_mysql_url(url)["db"])
    with conn.cursor() as cur:
        for table in TABLES:
            cur.execute(f"DELETE FROM {table}")
    conn.close()


def make_config(setup: str, tmp_path: Any, mysql_url: str | None, **overrides: Any) -> Config:
    production = setup == PRODUCTION
    values = dict(
        data_dir=tmp_path,
        mysql_url=mysql_url if production else None,
        redis_url=REDIS_URL if production else None,
        redis_prefix=f"ask2live-test-{secrets.token_hex(4)}",
        secret=secrets.token_bytes(32),
        scrypt_n=TEST_SCRYPT_N,
        # The port names this server's write-behind consumer; each test server gets its own.
        port=40000 + secrets.randbelow(20000),
    )
    values.update(overrides)
    return Config(**values)


def drop_database(name: str) -> None:
    conn = mysql_connect()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def delete_redis_keys(prefix: str, url: str = REDIS_URL) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=SETUPS)
def setup(request: Any) -> str:
    """The set-up this test runs on: "embedded" or "production"."""
    return request.param


@pytest.fixture
def config(setup: str, tmp_path: Any, mysql_url: str | None) -> Config:
    return make_config(setup, tmp_path, mysql_url)


@pytest.fixture
def services(io_loop: Any, config: Config) -> Any:
    context = running_services(config)
    services = io_loop.run_sync(context.__aenter__)
    if config.mysql_url:
        clear_mysql(config.mysql_url)
    yield services
    io_loop.run_sync(lambda: context.__aexit__(None, None, None))
    if config.redis_url:
        delete_redis_keys(config.redis_prefix)


@pytest.fixture
def app(services: Any) -> Any:
    return make_app(services)


class Response:
    def __init__(self, status: int, body: bytes, headers: Any) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.json = orjson.loads(body) if body else None

    @property
    def error_code(self) -> str | None:
        return (self.json or {}).get("error", {}).get("code")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:300]!r}>"


class Api:
    """A client of the running server, over real HTTP."""

    def __init__(self, http_client: Any, base_url: str) -> None:
        self.http = http_client
        self.base_url = base_url
        self._names = 0

    async def call(self, method: str, path: str, body: Any = None, token: str | None = None,
                   raw: bytes | None = None, headers: dict | None = None) -> Response:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        data = raw if raw is not None else (orjson.dumps(body) if body is not None else None)
        if data is None and method in ("POST", "PATCH", "PUT"):
            data = b""
        try:
            r = await self.http.fetch(self.base_url + path, method=method, body=data, headers=all_headers,
                                      allow_nonstandard_methods=True)
            return Response(r.code, r.body, r.headers)
        except HTTPClientError as e:
            if e.response is None:
                raise
            return Response(e.code, e.response.body, e.response.headers)

    async def user(self, name: str | None = None, display_name: str | None = None) -> "Account":
        """A new signed-in user."""
        self._names += 1
        name = name or f"user{self._names}_{secrets.token_hex(2)}"
        password = "correct horse battery"
        r = await self.call("POST", "/api/users", {"username": name, "password": password,
                                                   "display_name": display_name or name.title()})
        assert r.status == 201, r
        r = await self.call("POST", "/api/login", {"username": name, "password": password})
        assert r.status == 200, r
        return Account(self, r.json["token"], r.json["user"])


class Account:
    def __init__(self, api: Api, token: str, user: dict) -> None:
        self.api = api
        self.token = token
        self.user = user
        self.id = user["id"]

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> Response:
        return await self.api.call(method, path, body, token=self.token, **kw)

    async def get(self, path: str) -> Response:
        return await self.call("GET", path)

    async def post(self, path: str, body: Any = None) -> Response:
        return await self.call("POST", path, body)

    async def session(self, **fields: Any) -> dict:
        """A new scheduled session hosted by this account."""
        body = {"title": "Ask me anything", "description": "", "starts_at": "2099-01-01T10:00:00+09:00"}
        body.update(fields)
        r = await self.post("/api/sessions", body)
        assert r.status == 201, r
        return r.json["session"]

    async def question(self, session_id: int, text: str = "What is next?", **fields: Any) -> dict:
        r = await self.post(f"/api/sessions/{session_id}/questions", {"text": text, **fields})
        assert r.status == 201, r
        return r.json["question"]


@pytest.fixture
def api(services: Any, http_client: Any, base_url: str) -> Api:
    # Naming ``services`` here puts the set-up parameter in every API test's closure.
    return Api(http_client, base_url)


async def db_rows(services: Any, sql: str, *args: Any) -> list[dict]:
    """Read (or poke) the cold store directly, to check what a request did or did not change."""

    async def fn(txn: Any) -> list[dict]:
        if sql.lstrip().upper().startswith("SELECT"):
            return await txn.fetchall(sql, *args)
        await txn.execute(sql, *args)
        return []

    return await services.store.engine.run(fn)


@pytest.fixture
def rooms(api: Api) -> Any:
    """``await rooms(account, sid)``: a RoomClient in that session's live room, as that
    account; every one is closed afterwards."""
    opened: list[RoomClient] = []

    async def connect(account: Account, sid: int, since: str | None = None) -> RoomClient:
        room = await RoomClient.connect(api.base_url, sid, account.token, since)
        opened.append(room)
        return room

    yield connect
    for room in opened:
        room.close()
