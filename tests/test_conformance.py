"""The mismatches between the server and its OpenAPI document that Schemathesis found
(tests/test_schemathesis.py), each pinned down by a small test of its own, on each set-up.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

OPENAPI_FILE = Path(__file__).resolve().parent.parent / "ask2live" / "openapi.json"


def spec() -> dict:
    return json.loads(OPENAPI_FILE.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ 405 and Allow


@pytest.mark.gen_test
@pytest.mark.parametrize("path, allow", [
    ("/api/me", "GET"),
    ("/api/login", "POST"),
    ("/api/sessions", "GET, POST"),
    ("/api/sessions/1", "GET, PATCH, DELETE"),
    ("/api/questions/1/vote", "POST, DELETE"),
    ("/healthz", "GET"),
    ("/", "GET, HEAD"),
    ("/static/app.css", "GET, HEAD"),
    ("/ws/sessions/1", "GET"),
])
async def test_an_undeclared_method_is_a_json_405_with_allow(api, path, allow):
    # RFC 9110: a 405 must say what is allowed. TRACE / was Tornado's HTML page. (Signed
    # in: a signed-out request to a signed-in route is 401 whatever its method.)
    account = await api.user()
    for method in ("TRACE", "PUT"):
        r = await account.call(method, path)
        assert (r.status, r.error_code) == (405, "method_not_allowed"), (method, r)
        assert r.headers["Allow"] == allow, (method, path, r.headers.get("Allow"))
        assert r.headers["Content-Type"].startswith("application/json")


@pytest.mark.gen_test
async def test_a_missing_static_file_is_a_json_404(api):
    r = await api.call("GET", "/static/no-such-file.js")
    assert (r.status, r.error_code) == (404, "not_found"), r
    assert r.headers["Content-Type"].startswith("application/json")


# ------------------------------------------------------------------ bodies


@pytest.mark.gen_test
async def test_an_integral_float_is_an_integer(api):
    # JSON Schema (and so the document) calls 19303.0 an integer; 2.5 stays refused.
    host = await api.user()
    session = await host.session(reservation_target=19303.0)
    assert session["reservation_target"] == 19303
    r = await host.post("/api/sessions", {"title": "t", "starts_at": "2099-01-01T10:00:00Z", "reservation_target": 2.5})
    assert (r.status, r.error_code) == (400, "invalid_field"), r


@pytest.mark.gen_test
async def test_a_patch_without_a_body_is_refused(api):
    # The document requires a body; an empty PATCH used to answer 200.
    host = await api.user()
    sid = (await host.session())["id"]
    r = await host.call("PATCH", f"/api/sessions/{sid}")
    assert (r.status, r.error_code) == (400, "invalid_body"), r


@pytest.mark.gen_test
async def test_text_over_the_limit_is_refused_even_if_trimming_would_bring_it_under(api):
    # "\x85" (NEL) is white space to Python's strip(): 201 characters were kept as 200.
    host = await api.user()
    for title in ("\x85" + "t" * 200, " " + "t" * 200):
        r = await host.post("/api/sessions", {"title": title, "starts_at": "2099-01-01T10:00:00Z"})
        assert r.status == 422, r


# ------------------------------------------------------------------ query parameters


@pytest.mark.gen_test
@pytest.mark.parametrize("query", ["host=", "limit=", "offset=", "host=1.5", "limit=2.0"])
async def test_an_empty_or_fractional_integer_parameter_is_refused(api, query):
    viewer = await api.user()
    r = await viewer.get(f"/api/sessions?{query}")
    assert (r.status, r.error_code) == (400, "invalid_parameter"), r


@pytest.mark.gen_test
async def test_host_ids_are_bounded_as_documented(api):
    viewer = await api.user()
    documented = next(p for p in spec()["paths"]["/api/sessions"]["get"]["parameters"] if p.get("name") == "host")
    maximum = documented["schema"]["maximum"]
    assert (await viewer.get(f"/api/sessions?host={maximum}")).status == 200
    r = await viewer.get(f"/api/sessions?host={maximum + 1}")
    assert (r.status, r.error_code) == (422, "out_of_range"), r


@pytest.mark.gen_test
async def test_every_cursor_the_document_allows_is_taken_and_nothing_else(api):
    import re

    pattern = spec()["components"]["parameters"]["Cursor"]["schema"]["pattern"]
    host = await api.user()
    for _ in range(3):
        await host.session()
    first = await host.get("/api/sessions?limit=2")
    cursor = first.json["next_cursor"]
    assert re.fullmatch(pattern, cursor), cursor
    assert len((await host.get(f"/api/sessions?limit=2&cursor={cursor}")).json["items"]) == 1
    for taken in ("o0", "o9999999999", ""):
        assert re.fullmatch(pattern, taken)
        assert (await host.get(f"/api/sessions?cursor={taken}")).status == 200, taken
    for refused in ("bzoy", "o", "o-1", "o12345678901", "%C3%A6%C5%93"):
        r = await host.get(f"/api/sessions?cursor={refused}")
        assert (r.status, r.error_code) == (400, "invalid_cursor"), (refused, r)
