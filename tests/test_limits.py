"""GET /api/limits: the server's limits, for clients' forms, equal to the constants the
validation uses, and readable without signing in (the sign-up form needs them)."""

from __future__ import annotations

import re

import pytest

from ask2live.cuesheet import QUESTION_MAX
from ask2live.handlers.accounts import DISPLAY_NAME_MAX, PASSWORD_MAX, PASSWORD_MIN, USERNAME_RE
from ask2live.handlers.meta import pattern_lengths
from ask2live.handlers.sessions import PAGE_MAX
from ask2live.protocol import CHAT_MAX, CLIENT_MSG_ID_MAX
from ask2live.schedule import DESCRIPTION_MAX, RESERVATION_TARGET_MAX, TAG_MAX, TAGS_MAX, TITLE_MAX


@pytest.mark.gen_test
async def test_limits_are_the_validation_constants(api):
    r = await api.call("GET", "/api/limits")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json == {
        "username": {"min_length": 3, "max_length": 32, "pattern": USERNAME_RE.pattern},
        "password": {"min_length": PASSWORD_MIN, "max_length": PASSWORD_MAX},
        "display_name": {"max_length": DISPLAY_NAME_MAX},
        "title": {"max_length": TITLE_MAX},
        "description": {"max_length": DESCRIPTION_MAX},
        "tags": {"max_items": TAGS_MAX, "max_length": TAG_MAX},
        "reservation_target": {"maximum": RESERVATION_TARGET_MAX},
        "question": {"max_length": QUESTION_MAX},
        "chat": {"max_length": CHAT_MAX},
        "client_msg_id": {"max_length": CLIENT_MSG_ID_MAX},
        "page": {"max_limit": PAGE_MAX},
    }


@pytest.mark.gen_test
async def test_limits_need_no_sign_in_and_ignore_a_bad_token(api):
    r = await api.call("GET", "/api/limits", token="not-a-token")
    assert r.status == 200, r
    assert r.json["chat"] == {"max_length": CHAT_MAX}


def test_the_username_bounds_are_the_ones_the_pattern_enforces():
    low, high = pattern_lengths(USERNAME_RE.pattern)
    assert USERNAME_RE.match("a" * low) and USERNAME_RE.match("a" * high)
    assert not USERNAME_RE.match("a" * (low - 1)) and not USERNAME_RE.match("a" * (high + 1))
    with pytest.raises(ValueError):
        pattern_lengths(r"^\w+$")


@pytest.mark.gen_test
async def test_sign_up_refuses_exactly_past_the_published_limits(api):
    limits = (await api.call("GET", "/api/limits")).json
    username, password = limits["username"], limits["password"]
    ok = {"username": "a" * username["max_length"], "password": "p" * password["min_length"],
          "display_name": "d" * limits["display_name"]["max_length"]}
    r = await api.call("POST", "/api/users", ok)
    assert r.status == 201, r
    for field, value, code in [("username", "a" * (username["max_length"] + 1), "too_long"),
                               ("username", "a" * (username["min_length"] - 1), "invalid_username"),
                               ("username", "not allowed!", "invalid_username"),
                               ("password", "p" * (password["min_length"] - 1), "invalid_password"),
                               ("password", "p" * (password["max_length"] + 1), "invalid_password"),
                               ("display_name", "d" * (limits["display_name"]["max_length"] + 1), "too_long")]:
        body = {**ok, "username": "b" * username["min_length"], field: value}
        r = await api.call("POST", "/api/users", body)
        assert r.status == 422, (field, r)
        assert r.error_code == code, (field, r)
        # What the server refuses, the published pattern refuses too (the client's check).
        if field == "username":
            assert not re.fullmatch(username["pattern"], value)
