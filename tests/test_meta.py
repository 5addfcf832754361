"""The API description, the health check, the two schema files, and the ``ask2live`` command.

The OpenAPI and health tests run in-process on each set-up (the ``api`` fixture). The
schema-file tests need no server. The command tests start real ``ask2live serve``
processes (tests/serve.py), so they take no set-up parameter and run once each.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import secrets
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import tornado.web

from ask2live.app import routes
from conftest import EMBEDDED, MYSQL_SERVER, PRODUCTION, SETUPS, STORE_NAMES, db_rows, drop_database, mysql_connect
from serve import ServeProcess, clean_env, http_json

ROOT = Path(__file__).resolve().parent.parent
OPENAPI_FILE = ROOT / "ask2live" / "openapi.json"
MYSQL_SCHEMA = ROOT / "schema.sql"
SQLITE_SCHEMA = ROOT / "ask2live" / "store" / "schema_sqlite.sql"
HTTP_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")
ID_GROUP = "([0-9]{1,19})"

# ------------------------------------------------------------------ OpenAPI


def spec() -> dict:
    return json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))


def documented_paths(pattern: str) -> list[str]:
    """The OpenAPI paths one route pattern stands for, with every path parameter written
    ``{}``: an id group is a parameter, an alternation ``(a|b)`` is one path per word."""
    choices = []
    for part in re.split(r"(\([^)]*\))", pattern):
        if part == ID_GROUP or part == "(.*)":
            choices.append(["{}"])
        elif part == "()":
            choices.append([""])
        elif part.startswith("("):
            words = part[1:-1]
            assert re.fullmatch(r"[a-z_]+(\|[a-z_]+)*", words), \
                f"teach documented_paths() the group {part} in {pattern}"
            choices.append(words.split("|"))
        else:
            literal = part.replace(r"\.", ".")
            assert not re.search(r"[\\^$*+?\[\]{}|()]", literal), \
                f"teach documented_paths() the regex in {pattern}"
            choices.append([literal])
    return ["".join(p) for p in itertools.product(*choices)]


def untemplated(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def handler_methods(handler: type) -> set[str]:
    """The HTTP methods a handler class answers (those it overrides)."""
    return {m for m in HTTP_METHODS if getattr(handler, m) is not getattr(tornado.web.RequestHandler, m)}


def registered_operations() -> dict[str, set[str]]:
    ops: dict[str, set[str]] = {}
    for pattern, handler, _ in routes(None):
        for path in documented_paths(pattern):
            assert path not in ops, f"two routes for {path}"
            ops[path] = handler_methods(handler)
    return ops


def test_documented_paths_expands_the_route_patterns():
    assert documented_paths("/api/sessions/([0-9]{1,19})/(start|end|confirm)") == [
        "/api/sessions/{}/start", "/api/sessions/{}/end", "/api/sessions/{}/confirm"]
    assert documented_paths("/api/questions/([0-9]{1,19})") == ["/api/questions/{}"]
    assert documented_paths("/healthz") == ["/healthz"]


def test_every_route_and_method_is_documented_and_nothing_else():
    documented = {untemplated(path): {m for m in item if m in HTTP_METHODS} for path, item in spec()["paths"].items()}
    registered = registered_operations()
    undocumented, unrouted = set(registered) - set(documented), set(documented) - set(registered)
    assert not undocumented and not unrouted, \
        f"routes missing from openapi.json: {sorted(undocumented)}; paths app.py has no route for: {sorted(unrouted)}"
    for path, methods in registered.items():
        assert documented[path] == methods, f"{path}: the handler answers {methods}, the document has {documented[path]}"


def test_every_reference_in_the_document_resolves():
    doc = spec()

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
            return found + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/"), ref
        node: Any = doc
        for key in ref[2:].split("/"):
            key = key.replace("~1", "/").replace("~0", "~")
            assert key in node, f"unresolved $ref {ref}"
            node = node[key]


def test_every_templated_path_declares_its_parameters_and_errors_use_the_envelope():
    doc = spec()
    components = doc["components"]
    for path, item in doc["paths"].items():
        names = set(re.findall(r"\{([^}]+)\}", path))
        for method in set(item) & set(HTTP_METHODS):
            operation = item[method]
            params = [components["parameters"][p["$ref"].rsplit("/", 1)[1]] if "$ref" in p else p
                      for p in item.get("parameters", []) + operation.get("parameters", [])]
            assert {p["name"] for p in params if p["in"] == "path"} == names, f"{method} {path}"
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    if "$ref" in response:
                        response = components["responses"][response["$ref"].rsplit("/", 1)[1]]
                    content = response["content"]
                    # The REST routes answer every error as JSON; the WebSocket upgrade also
                    # has Tornado's own plain-text refusals, documented as such.
                    if path.startswith("/api/") or path == "/healthz":
                        assert set(content) == {"application/json"}, f"{method} {path} {status}"
                    if "application/json" in content:
                        schema = content["application/json"]["schema"]
                        assert schema == {"$ref": "#/components/schemas/Error"}, f"{method} {path} {status}"


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate  # the test extra has it: never skipped

    validate(spec())


@pytest.mark.gen_test
async def test_openapi_document_is_served_as_json(api):
    r = await api.call("GET", "/api/openapi.json")
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json == spec()
    assert r.json["openapi"].startswith("3.1")


def schema_keys(name: str) -> tuple[set[str], set[str]]:
    schema = spec()["components"]["schemas"][name]
    return set(schema["properties"]), set(schema["required"])


@pytest.mark.gen_test
async def test_documented_objects_match_what_the_api_returns(api):
    host = await api.user("host")
    guest = await api.user("guest")
    session = await host.session(reservation_target=1)
    question = await guest.question(session["id"], "질문", anonymous=True)
    seen = await host.get(f"/api/sessions/{session['id']}/questions")
    for name, obj in [("User", host.user), ("Session", session), ("Question", question),
                      ("Question", seen.json["items"][0])]:
        properties, required = schema_keys(name)
        assert set(obj) == properties == required, name
    assert set(session["counts"]) == set(spec()["components"]["schemas"]["Session"]["properties"]["counts"]["required"])
    error = await api.call("GET", "/api/me")
    properties, _ = schema_keys("Error")
    assert set(error.json) == properties
    assert set(error.json["error"]) == set(spec()["components"]["schemas"]["Error"]["properties"]["error"]["required"])


def test_the_document_names_the_bearer_token_and_the_cookie():
    doc = spec()
    schemes = doc["components"]["securitySchemes"]
    assert {"type": "http", "scheme": "bearer"}.items() <= schemes["bearerAuth"].items()
    assert {"type": "apiKey", "in": "cookie", "name": "ask2live_token"}.items() <= schemes["cookieAuth"].items()
    documented_public = {(untemplated(path), m) for path, item in doc["paths"].items() for m, op in item.items()
                          if m in HTTP_METHODS and op.get("security") == []}
    registered_public = {(path, m) for pattern, handler, _ in routes(None)
                         if not getattr(handler, "requires_login", True)
                         or issubclass(handler, tornado.web.StaticFileHandler)
                         for path in documented_paths(pattern) for m in handler_methods(handler)}
    assert documented_public == registered_public == {
        ("/api/users", "post"), ("/api/login", "post"), ("/api/openapi.json", "get"), ("/api/limits", "get"),
        ("/healthz", "get"), ("/metrics", "get"), ("/", "get"), ("/", "head"), ("/static/{}", "get"), ("/static/{}", "head")}


# ------------------------------------------------------------------ health


@pytest.mark.gen_test
async def test_healthz_names_the_store(api, setup):
    r = await api.call("GET", "/healthz")
    assert r.status == 200
    assert r.json == {"ok": True, "store": STORE_NAMES[setup], "pid": os.getpid()}  # in-process server


# ------------------------------------------------------------------ schema parity


def parse_schema(path: Path) -> dict[str, dict]:
    """Tables of a schema file: {table: {columns: [...], not_null: {...}, primary: (...),
    indexes: {name: (unique, (columns...))}}}. Handles what our two files use: inline and
    table-level PRIMARY KEY, MySQL (UNIQUE) KEY lines, SQLite CREATE (UNIQUE) INDEX."""
    text = "\n".join(line.split("--", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())
    tables: dict[str, dict] = {}

    def cols(spec: str) -> tuple[str, ...]:
        return tuple(c.strip() for c in spec.split(","))

    for statement in (s.strip() for s in text.split(";")):
        if not statement:
            continue
        m = re.match(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*)\)[^)]*$", statement, re.S)
        if m:
            table = tables[m.group(1)] = {"columns": [], "not_null": set(), "primary": (), "indexes": {}}
            for item in re.split(r",\s*\n", m.group(2).strip()):
                item = " ".join(item.split())
                if k := re.fullmatch(r"PRIMARY KEY \(([^)]*)\)", item):
                    table["primary"] = cols(k.group(1))
                elif k := re.fullmatch(r"(UNIQUE )?KEY (\w+) \(([^)]*)\)", item):
                    table["indexes"][k.group(2)] = (bool(k.group(1)), cols(k.group(3)))
                else:
                    name = item.split()[0]
                    table["columns"].append(name)
                    if "PRIMARY KEY" in item:
                        table["primary"] = (name,)
                    if "NOT NULL" in item or "PRIMARY KEY" in item:
                        table["not_null"].add(name)
            continue
        m = re.fullmatch(r"CREATE (UNIQUE )?INDEX IF NOT EXISTS (\w+) ON (\w+) \(([^)]*)\)", " ".join(statement.split()))
        assert m, f"{path.name}: teach parse_schema() this statement: {statement[:80]}"
        tables[m.group(3)]["indexes"][m.group(2)] = (bool(m.group(1)), cols(m.group(4)))
    return tables


def test_schema_parser_reads_both_files():
    for path in (MYSQL_SCHEMA, SQLITE_SCHEMA):
        tables = parse_schema(path)
        assert "questions" in tables and "users" in tables
        assert tables["users"]["indexes"]["users_username"] == (True, ("username",))
        assert tables["reservations"]["primary"] == ("session_id", "user_id")
        assert "revoked_at" in tables["auth_tokens"]["columns"]
        assert "revoked_at" not in tables["auth_tokens"]["not_null"]


def test_mysql_and_sqlite_schemas_define_the_same_tables_columns_and_keys():
    mysql, sqlite = parse_schema(MYSQL_SCHEMA), parse_schema(SQLITE_SCHEMA)
    assert sorted(mysql) == sorted(sqlite)
    for name in mysql:
        m, s = mysql[name], sqlite[name]
        assert m["columns"] == s["columns"], f"columns of {name}"
        assert m["not_null"] == s["not_null"], f"NOT NULL columns of {name}"
        assert m["primary"] == s["primary"], f"primary key of {name}"
        assert m["indexes"] == s["indexes"], f"indexes and unique keys of {name}"


def test_the_store_module_reads_schema_sql():
    # The MySQL engine loads store/schema_mysql.sql: it must be schema.sql itself.
    assert (ROOT / "ask2live" / "store" / "schema_mysql.sql").read_text(encoding="utf-8") == \
        MYSQL_SCHEMA.read_text(encoding="utf-8")


@pytest.mark.gen_test
async def test_the_running_store_has_the_tables_and_indexes_of_its_schema_file(services, setup):
    expected = parse_schema(MYSQL_SCHEMA if setup == PRODUCTION else SQLITE_SCHEMA)
    if setup == PRODUCTION:
        rows = await db_rows(services, "SELECT table_name AS t, column_name AS c FROM information_schema.columns"
                                       " WHERE table_schema = DATABASE() ORDER BY table_name, ordinal_position")
        indexes = await db_rows(services, "SELECT DISTINCT table_name AS t, index_name AS i"
                                          " FROM information_schema.statistics"
                                          " WHERE table_schema = DATABASE() AND index_name <> 'PRIMARY'")
    else:
        rows = await db_rows(services, "SELECT m.name AS t, p.name AS c FROM sqlite_master m"
                                       " JOIN pragma_table_info(m.name) p WHERE m.type = 'table'"
                                       " AND m.name NOT LIKE 'sqlite_%' ORDER BY m.name, p.cid")
        indexes = await db_rows(services, "SELECT tbl_name AS t, name AS i FROM sqlite_master"
                                          " WHERE type = 'index' AND sql IS NOT NULL")
    columns: dict[str, list[str]] = {}
    for row in rows:
        columns.setdefault(row["t"], []).append(row["c"])
    assert columns == {name: table["columns"] for name, table in expected.items()}
    assert {(r["t"], r["i"]) for r in indexes} == {(name, index) for name, table in expected.items()
                                                    for index in table["indexes"]}


# ------------------------------------------------------------------ the ask2live command


def sign_up_and_log_in(url: str, username: str) -> str:
    status, body = http_json("POST", url + "/api/users", {"username": username, "password": "correct horse battery"})
    assert status == 201, body
    status, body = http_json("POST", url + "/api/login", {"username": username, "password": "correct horse battery"})
    assert status == 200, body
    return body["token"]


def test_serve_starts_on_the_embedded_store_and_keeps_its_secret_across_restarts(tmp_path):
    data_dir = tmp_path / "data"  # does not exist yet: the server makes it
    server = ServeProcess(EMBEDDED, tmp=tmp_path, data_dir=data_dir)
    try:
        assert server.health == {"ok": True, "store": "sqlite", "pid": server.proc.pid}
        secret_file = data_dir / "secret"
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text()
        assert re.fullmatch(r"[0-9a-f]{64}\n", secret)
        assert (data_dir / "ask2live.sqlite3").exists()
        token = sign_up_and_log_in(server.url, "restarter")
        assert http_json("GET", server.url + "/api/me", token=token)[0] == 200
    finally:
        code = server.stop()
    assert code == 0, f"SIGTERM should stop the server cleanly:\n{server.output()}"

    server = ServeProcess(EMBEDDED, tmp=tmp_path, data_dir=data_dir)
    try:
        assert secret_file.read_text() == secret
        status, body = http_json("GET", server.url + "/api/me", token=token)
        assert status == 200 and body["user"]["username"] == "restarter"
    finally:
        server.stop()


def test_serve_with_the_secret_flag_writes_no_secret_file(tmp_path):
    server = ServeProcess(EMBEDDED, "--secret", "a-secret-from-outside", tmp=tmp_path)
    try:
        assert server.health["store"] == "sqlite"
        assert not (server.data_dir / "secret").exists()
    finally:
        server.stop()


@pytest.mark.skipif(PRODUCTION not in SETUPS, reason="ASK2LIVE_TEST_SETUPS leaves out production (MariaDB)")
def test_serve_uses_mysql_when_the_env_var_names_it(tmp_path):
    database = f"ask2live_cli_{os.getpid()}_{secrets.token_hex(3)}"
    server = None
    try:
        # The embedded set-up's flags (no --mysql-url): the variable alone picks MariaDB.
        server = ServeProcess(EMBEDDED, tmp=tmp_path, env={"ASK2LIVE_MYSQL_URL": f"{MYSQL_SERVER}/{database}"})
        assert server.health == {"ok": True, "store": "mysql", "pid": server.proc.pid}
        sign_up_and_log_in(server.url, "in_mysql")
        conn = mysql_connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT username FROM users")
                assert cur.fetchall() == (("in_mysql",),)
        finally:
            conn.close()
        assert not (server.data_dir / "ask2live.sqlite3").exists()
    finally:
        if server is not None:
            server.stop()
        drop_database(database)


def test_the_readme_documents_every_serve_flag_and_its_variable():
    from ask2live.config import ENV_PREFIX, add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser, {})
    flags = {o for action in parser._actions for o in action.option_strings if o.startswith("--") and o != "--help"}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `(--[a-z0-9-]+)`[^|]*\| `([A-Z0-9_]+)`", readme, re.M)}
    assert flags <= set(rows), f"flags missing from the README's configuration table: {sorted(flags - set(rows))}"
    for flag in flags:
        name = flag[2:].upper().replace("-", "_")
        assert rows[flag] in (ENV_PREFIX + name, ENV_PREFIX + name + "S"), f"{flag}: {rows[flag]}"


def test_no_command_prints_help_and_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "ask2live"], env=clean_env(), cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "serve" in result.stdout
    assert not (tmp_path / "ask2live-data").exists()


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path):
    """A newcomer whose port is busy gets a sentence and exit 2, not a traceback."""
    import socket as socket_module

    from serve import ChildProcess, clean_env

    with socket_module.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        child = ChildProcess([sys.executable, "-m", "ask2live", "serve", "--port", str(port), "--data-dir",
                              str(tmp_path / "data")], tmp_path / "serve.log", env=clean_env(), cwd=tmp_path)
        code = child.proc.wait(30)
        output = child.output()
        child.stop()
    assert code == 2, output
    assert f"cannot listen on 127.0.0.1:{port}" in output and "--port" in output
    assert "Traceback" not in output
