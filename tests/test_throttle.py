"""Throttles: the contract both implementations keep (throttle.py), and the login and
sign-up throttles through the API on each set-up (accounts.py).

Addresses: a request's address is the TCP peer as Tornado sees it; the tests send from
other loopback addresses (127.0.0.2, ...) to be other people.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import orjson
import pytest
from tornado.httpclient import HTTPClientError
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from ask2live.app import make_app, running_services
from ask2live.throttle import MemoryThrottle, RedisThrottle
from conftest import PRODUCTION, REDIS_URL, Response, delete_redis_keys, make_config

# ------------------------------------------------------------------ the contract

# Small windows keep the suite fast; waits are checked with this much slack for a slow
# machine (Redis's clock and ours are read a round trip apart).
SLACK = 0.05


@pytest.fixture(params=["memory", "redis"])
def make_throttle(request: Any, io_loop: Any) -> Any:
    """``make_throttle()``: a throttle of the implementation under test; each Redis one
    shares the test's key prefix (as the processes of one deployment do)."""
    prefix = f"ask2live-test-{secrets.token_hex(4)}"
    made: list = []

    def make() -> Any:
        throttle = MemoryThrottle() if request.param == "memory" else RedisThrottle(REDIS_URL, prefix)
        made.append(throttle)
        return throttle

    make.kind = request.param
    yield make
    for throttle in made:
        io_loop.run_sync(throttle.close)
    delete_redis_keys(prefix)


@pytest.mark.gen_test
async def test_limit_attempts_pass_at_once_then_the_next_waits_one_interval(make_throttle):
    throttle = make_throttle()
    assert [await throttle.hit("k", 3, 30.0) for _ in range(3)] == [None, None, None]
    wait = await throttle.hit("k", 3, 30.0)
    assert 10.0 - SLACK < wait <= 10.0  # 30 s / 3: one attempt per 10 s after the burst


@pytest.mark.gen_test
async def test_a_refused_attempt_is_not_counted(make_throttle):
    throttle = make_throttle()
    await throttle.hit("k", 1, 30.0)
    first = await throttle.hit("k", 1, 30.0)
    for _ in range(5):
        again = await throttle.hit("k", 1, 30.0)
    assert again <= first  # hammering does not push the wait further out


@pytest.mark.gen_test
async def test_after_the_wait_an_attempt_passes_again(make_throttle):
    throttle = make_throttle()
    assert await throttle.hit("k", 2, 0.2) is None
    assert await throttle.hit("k", 2, 0.2) is None
    wait = await throttle.hit("k", 2, 0.2)
    assert 0 < wait <= 0.1
    await asyncio.sleep(wait + SLACK)
    assert await throttle.hit("k", 2, 0.2) is None
    assert await throttle.hit("k", 2, 0.2) is not None


@pytest.mark.gen_test
async def test_keys_are_counted_apart(make_throttle):
    throttle = make_throttle()
    assert await throttle.hit("a", 1, 30.0) is None
    assert await throttle.hit("a", 1, 30.0) is not None
    assert await throttle.hit("b", 1, 30.0) is None


@pytest.mark.gen_test
async def test_reset_forgets_every_attempt(make_throttle):
    throttle = make_throttle()
    for _ in range(3):
        await throttle.hit("k", 3, 30.0)
    await throttle.reset("k")
    assert [await throttle.hit("k", 3, 30.0) for _ in range(3)] == [None, None, None]
    await throttle.reset("never-seen")  # not an error


@pytest.mark.gen_test
async def test_forgive_takes_back_one_attempt(make_throttle):
    throttle = make_throttle()
    for _ in range(3):
        await throttle.hit("k", 3, 30.0)
    await throttle.forgive("k", 3, 30.0)
    assert await throttle.hit("k", 3, 30.0) is None
    assert await throttle.hit("k", 3, 30.0) is not None
    await throttle.forgive("never-seen", 3, 30.0)
    assert [await throttle.hit("never-seen", 3, 30.0) for _ in range(3)] == [None, None, None]


@pytest.mark.gen_test
async def test_a_large_limit_and_a_fractional_interval(make_throttle):
    throttle = make_throttle()
    results = [await throttle.hit("k", 100, 25.0) for _ in range(101)]
    assert results[:100] == [None] * 100
    assert 0 < results[100] <= 0.25  # one attempt per 0.25 s, less the time the 101 calls took


@pytest.mark.gen_test
async def test_throttles_of_one_deployment_share_their_counts(make_throttle):
    if make_throttle.kind == "memory":
        pytest.skip("the memory throttle is one process's own by design")
    one, two = make_throttle(), make_throttle()
    assert await one.hit("k", 2, 30.0) is None
    assert await two.hit("k", 2, 30.0) is None
    assert await one.hit("k", 2, 30.0) is not None
    await two.reset("k")
    assert await one.hit("k", 2, 30.0) is None


@pytest.mark.gen_test
async def test_a_redis_that_does_not_answer_lets_attempts_through_quickly():
    with socket_that_never_answers() as port:
        throttle = RedisThrottle(f"redis://127.0.0.1:{port}/0", "nowhere", socket_timeout=0.2)
        started = time.monotonic()
        assert await throttle.hit("k", 1, 30.0) is None
        assert await throttle.hit("k", 1, 30.0) is None
        await throttle.forgive("k", 1, 30.0)
        await throttle.reset("k")
        assert time.monotonic() - started < 2.0
        await throttle.close()


class socket_that_never_answers:
    """A listening socket that accepts connections and never says a word (a hung Redis)."""

    def __enter__(self) -> int:
        self.sock, port = bind_unused_port()
        self.sock.listen(8)
        return port

    def __exit__(self, *exc: Any) -> None:
        self.sock.close()


# ------------------------------------------------------------------ through the API

PASSWORD = "correct horse battery"


@pytest.fixture
def limits() -> dict:
    """Config overrides for the server under test; a test parametrizes it."""
    return {}


@pytest.fixture
def config(setup: str, tmp_path: Any, mysql_url: str | None, limits: dict) -> Any:
    return make_config(setup, tmp_path, mysql_url, **limits)


async def call(api: Any, method: str, path: str, body: Any = None, address: str = "127.0.0.1") -> Response:
    """A request from ``address`` (a loopback address: another person)."""
    url = api.base_url.replace("localhost", "127.0.0.1") + path
    try:
        r = await api.http.fetch(url, method=method, body=orjson.dumps(body) if body is not None else None,
                                 network_interface=address, allow_nonstandard_methods=True)
        return Response(r.code, r.body, r.headers)
    except HTTPClientError as e:
        return Response(e.code, e.response.body, e.response.headers)


async def sign_up(api: Any, username: str, address: str = "127.0.0.1") -> Response:
    return await call(api, "POST", "/api/users", {"username": username, "password": PASSWORD}, address)


async def log_in(api: Any, username: str, password: str, address: str = "127.0.0.1") -> Response:
    return await call(api, "POST", "/api/login", {"username": username, "password": password}, address)


def assert_throttled(r: Response) -> None:
    assert (r.status, r.error_code) == (429, "too_many_attempts"), r
    assert int(r.headers["Retry-After"]) >= 1, r.headers


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 3}])
async def test_wrong_passwords_are_throttled_and_then_the_right_one_waits_too(api):
    assert (await sign_up(api, "minji")).status == 201
    for _ in range(3):
        assert (await log_in(api, "minji", "wrong password")).error_code == "bad_credentials"
    assert_throttled(await log_in(api, "minji", "wrong password"))
    # Not even the right password gets in while the guesser waits: an answer would tell.
    r = await log_in(api, "minji", PASSWORD)
    assert_throttled(r)
    # 15 minutes / 3 attempts: the next one in 5 minutes.
    assert 290 <= int(r.headers["Retry-After"]) <= 300, r.headers


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 3}])
async def test_a_guesser_does_not_lock_the_real_user_out_from_their_own_address(api):
    assert (await sign_up(api, "minji")).status == 201
    for _ in range(4):
        await log_in(api, "minji", "wrong password", address="127.0.0.66")
    assert_throttled(await log_in(api, "minji", "wrong password", address="127.0.0.66"))
    r = await log_in(api, "minji", PASSWORD, address="127.0.0.2")
    assert r.status == 200, r


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 3}])
async def test_a_successful_login_clears_the_count_for_that_account_and_address(api):
    assert (await sign_up(api, "minji")).status == 201
    for _ in range(2):
        assert (await log_in(api, "minji", "wrong password")).status == 401
    assert (await log_in(api, "minji", PASSWORD)).status == 200
    for _ in range(3):
        assert (await log_in(api, "minji", "wrong password")).status == 401
    assert_throttled(await log_in(api, "minji", "wrong password"))


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 3}])
async def test_an_unknown_username_is_throttled_like_a_known_one(api):
    # The throttle must not tell which usernames exist; nor does case.
    assert (await sign_up(api, "minji")).status == 201
    answers = {}
    for name in ("minji", "nobody"):
        answers[name] = [(await log_in(api, name, "wrong password")).status for _ in range(4)]
    assert answers["minji"] == answers["nobody"] == [401, 401, 401, 429]
    assert_throttled(await log_in(api, "MINJI", "wrong password"))


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 100, "login_address_limit": 5}])
async def test_failed_logins_from_one_address_over_many_accounts_are_throttled(api):
    for i in range(5):
        assert (await log_in(api, f"user{i}", "password123")).status == 401
    assert_throttled(await log_in(api, "user5", "password123"))
    # Another address is not held back.
    assert (await log_in(api, "user5", "password123", address="127.0.0.2")).status == 401


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_address_limit": 3}])
async def test_successful_logins_do_not_count_against_the_address(api):
    # A venue: a whole audience behind one address logs in at once.
    for i in range(3):
        assert (await sign_up(api, f"guest{i}")).status == 201
    for _ in range(3):
        for i in range(3):
            assert (await log_in(api, f"guest{i}", PASSWORD)).status == 200
    assert (await log_in(api, "guest0", "wrong password")).status == 401


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"signup_limit": 2}])
async def test_sign_ups_from_one_address_are_throttled(api):
    assert (await sign_up(api, "first")).status == 201
    assert (await sign_up(api, "first")).error_code == "username_taken"  # counts: it tells a name exists
    assert_throttled(await sign_up(api, "third"))
    assert (await sign_up(api, "third", address="127.0.0.2")).status == 201


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 0, "login_address_limit": 0, "signup_limit": 0}])
async def test_a_limit_of_zero_is_no_limit(api):
    for i in range(12):
        assert (await sign_up(api, f"load{i}")).status == 201
    for _ in range(12):
        assert (await log_in(api, "load0", "wrong password")).status == 401


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 3}])
async def test_parallel_guesses_cannot_outrun_the_throttle(api):
    # Every attempt is counted before its password is hashed: 20 guesses at once get
    # 3 answers, not 20.
    assert (await sign_up(api, "minji")).status == 201
    answers = await asyncio.gather(*(log_in(api, "minji", f"guess {i}") for i in range(20)))
    assert sorted(r.status for r in answers) == [401] * 3 + [429] * 17


@pytest.mark.gen_test
@pytest.mark.parametrize("limits", [{"login_limit": 2}])
async def test_every_process_of_a_deployment_sees_the_same_failures(api, config, setup, io_loop):
    if setup != PRODUCTION:
        pytest.skip("the embedded set-up is one process")
    assert (await sign_up(api, "minji")).status == 201
    # A second process of the same deployment: the same database, Redis and prefix.
    context = running_services(config)
    other = await context.__aenter__()
    sock, port = bind_unused_port()
    server = HTTPServer(make_app(other))
    server.add_sockets([sock])
    try:
        class Other:
            http, base_url = api.http, f"http://127.0.0.1:{port}"

        assert (await log_in(api, "minji", "wrong password")).status == 401
        assert (await log_in(Other, "minji", "wrong password")).status == 401
        assert_throttled(await log_in(api, "minji", "wrong password"))
        assert_throttled(await log_in(Other, "minji", PASSWORD))
    finally:
        server.stop()
        await context.__aexit__(None, None, None)
