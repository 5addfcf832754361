"""No log line carries a request's query string, which can hold a secret (a ticket, or a
token a client put in the URL): Tornado's own warnings for a bad request name the path only."""

from __future__ import annotations

import logging

import pytest

pytestmark = pytest.mark.gen_test(timeout=30)

SECRET = "SeCrEt-9f2c1d"


async def test_error_paths_log_the_path_without_the_query_string(api, caplog):
    caplog.set_level(logging.DEBUG)
    user = await api.user()
    sid = (await user.session())["id"]
    paths = [f"/api/sessions?q=%ff&token={SECRET}", f"/api/sessions/{sid}/questions?sort=%ff&token={SECRET}",
             f"/ws/sessions/{sid}?since=%ff&ticket={SECRET}", f"/ws/sessions/{sid}?token={SECRET}",
             f"/ws/sessions/{sid}?ticket={SECRET}", f"/api/sessions?limit=%ff&token={SECRET}"]
    for path in paths:
        r = await user.call("GET", path)
        assert 400 <= r.status < 500, (path, r)
    warned = [rec for rec in caplog.records if "Invalid unicode" in rec.getMessage()]
    assert warned, "the bad requests were not logged at all: the test would prove nothing"
    leaked = [rec.getMessage() for rec in caplog.records if SECRET in rec.getMessage()]
    assert not leaked, leaked
