"""The room socket's URL asked with a method other than GET: a JSON 405 naming the method
it takes, whoever asks, and nothing in the server's error log (it is the client's
mistake, not a fault)."""

from __future__ import annotations

import logging

import pytest

pytestmark = pytest.mark.gen_test

METHODS = ["POST", "PUT", "DELETE", "PATCH"]


def assert_json_405(r) -> None:
    assert r.status == 405 and r.error_code == "method_not_allowed", r
    assert r.headers.get("Allow") == "GET", r.headers
    assert r.headers.get("Content-Type", "").startswith("application/json")


def faults(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("method", METHODS)
async def test_a_signed_in_request_with_another_method_is_a_json_405_and_no_traceback(api, caplog, method):
    host = await api.user()
    session = await host.session()
    with caplog.at_level(logging.INFO):
        # The socket takes its token from the query (or the login cookie).
        assert_json_405(await api.call(method, f"/ws/sessions/{session['id']}?token={host.token}", {}))
    assert not faults(caplog)


@pytest.mark.parametrize("method", METHODS)
async def test_a_signed_out_request_with_another_method_is_a_405_not_a_401(api, caplog, method):
    host = await api.user()
    session = await host.session()
    with caplog.at_level(logging.INFO):
        assert_json_405(await api.call(method, f"/ws/sessions/{session['id']}", {}))
    assert not faults(caplog)
