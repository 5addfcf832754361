"""Sign up, log in, log out, /api/me, on both set-ups, through HTTP."""

import pytest

from conftest import db_rows

pytestmark = pytest.mark.gen_test


async def test_sign_up_returns_the_user_and_keeps_unicode(api):
    r = await api.call("POST", "/api/users", {"username": "minji", "password": "비밀번호는길어요", "display_name": "김민지 🎤"})
    assert r.status == 201, r
    assert r.json["user"]["username"] == "minji"
    assert r.json["user"]["display_name"] == "김민지 🎤"
    r = await api.call("POST", "/api/login", {"username": "minji", "password": "비밀번호는길어요"})
    assert r.status == 200
    me = await api.call("GET", "/api/me", token=r.json["token"])
    assert me.json["user"]["display_name"] == "김민지 🎤"


async def test_password_is_stored_hashed_with_scrypt(api, services):
    await api.call("POST", "/api/users", {"username": "hashme", "password": "plain-text-pw", "display_name": "H"})
    rows = await db_rows(services, "SELECT password_hash FROM users WHERE username = ?", "hashme")
    assert rows[0]["password_hash"].startswith("scrypt$")
    assert "plain-text-pw" not in rows[0]["password_hash"]


async def test_duplicate_username_is_409_case_insensitively(api, services):
    await api.user("dupe")
    r = await api.call("POST", "/api/users", {"username": "DUPE", "password": "long enough", "display_name": "x"})
    assert r.status == 409 and r.error_code == "username_taken"
    assert len(await db_rows(services, "SELECT id FROM users")) == 1


@pytest.mark.parametrize("body,status,code", [
    ({"username": "ok_name", "password": "short"}, 422, "invalid_password"),
    ({"username": "no spaces!", "password": "long enough"}, 422, "invalid_username"),
    ({"username": "ab", "password": "long enough"}, 422, "invalid_username"),
    ({"password": "long enough"}, 400, "missing_field"),
    ({"username": 7, "password": "long enough"}, 400, "invalid_field"),
    ([1, 2], 400, "invalid_body"),
])
async def test_bad_sign_up_is_refused_and_creates_nothing(api, services, body, status, code):
    r = await api.call("POST", "/api/users", body)
    assert (r.status, r.error_code) == (status, code), r
    assert await db_rows(services, "SELECT id FROM users") == []


async def test_malformed_json_is_400(api):
    r = await api.call("POST", "/api/users", raw=b'{"username": ')
    assert r.status == 400 and r.error_code == "invalid_json"
    assert set(r.json["error"]) == {"code", "message"}


async def test_body_over_the_cap_is_413(api, services):
    r = await api.call("POST", "/api/users", raw=b'{"username": "' + b"a" * 70_000 + b'"}')
    assert r.status == 413 and r.error_code == "body_too_large"
    assert await db_rows(services, "SELECT id FROM users") == []


async def test_wrong_password_and_unknown_user_are_the_same_401(api):
    await api.user("known")
    wrong = await api.call("POST", "/api/login", {"username": "known", "password": "not the password"})
    unknown = await api.call("POST", "/api/login", {"username": "nobody", "password": "whatever"})
    assert wrong.status == unknown.status == 401
    assert wrong.json == unknown.json


async def test_login_sets_a_secure_httponly_cookie_that_authenticates(api):
    await api.user("cookie")
    r = await api.call("POST", "/api/login", {"username": "cookie", "password": "correct horse battery"})
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "SameSite=Strict" in cookie
    value = cookie.split(";")[0]
    me = await api.call("GET", "/api/me", headers={"Cookie": value})
    assert me.status == 200 and me.json["user"]["username"] == "cookie"


async def test_me_without_a_token_is_401(api):
    r = await api.call("GET", "/api/me")
    assert r.status == 401 and r.error_code == "not_signed_in"
    r = await api.call("GET", "/api/me", token="made-up-token")
    assert r.status == 401


async def test_logout_revokes_the_token_only(api):
    alice = await api.user("alice")
    second = await api.call("POST", "/api/login", {"username": "alice", "password": "correct horse battery"})
    assert (await alice.post("/api/logout")).status == 200
    assert (await alice.get("/api/me")).status == 401
    assert (await alice.post("/api/sessions", {"title": "x", "starts_at": "2099-01-01T00:00:00Z"})).status == 401
    # Another login of the same user is a different token and still works.
    assert (await api.call("GET", "/api/me", token=second.json["token"])).status == 200


async def test_expired_token_is_refused(api, services):
    alice = await api.user("expiring")
    await db_rows(services, "UPDATE auth_tokens SET expires_at = ?", "2000-01-01 00:00:00.000")
    assert (await alice.get("/api/me")).status == 401


async def test_tokens_are_stored_only_as_digests(api, services):
    alice = await api.user("digest")
    rows = await db_rows(services, "SELECT token_hash FROM auth_tokens")
    assert len(rows) == 1 and rows[0]["token_hash"] != alice.token and len(rows[0]["token_hash"]) == 64


async def test_unknown_route_is_a_json_404(api):
    r = await api.call("GET", "/api/nothing-here")
    assert r.status == 404 and r.error_code == "no_such_route"


async def test_wrong_method_is_a_json_405(api):
    alice = await api.user()
    r = await alice.call("PUT", "/api/me", {})
    assert r.status == 405 and r.error_code == "method_not_allowed"
