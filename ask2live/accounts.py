"""Accounts: password hashing, sign-up, log-in and bearer tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import math
import secrets
import time
from datetime import datetime, timedelta
from typing import Awaitable, Callable

from .errors import Conflict, TooManyRequests, Unauthorized
from .models import User
from .store import Store
from .throttle import Throttle
from .timeutil import utcnow

# scrypt with N=2**14, r=8 needs 16 MiB and ~50 ms per hash: memory-hard enough that
# a GPU farm gains little, cheap enough for a login. The parameters are stored in
# each hash, so raising them later only affects new passwords.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SCRYPT_SALT_BYTES = 16
SCRYPT_KEY_BYTES = 32

# 32 random bytes: unguessable; only an HMAC of it (keyed with the server secret) is
# stored, so a leaked database holds no usable tokens.
TOKEN_BYTES = 32
# Who a token belongs to is remembered per process this long: a logout reaches every
# process at once through the room log's notices (forget_token), so this only bounds how
# long a process that missed one (Redis down at that moment) keeps accepting the token; a
# token's own expiry is days away, far beyond it.
TOKEN_CACHE_SECONDS = 10.0
# Tokens remembered per process at most (a few MB): past it the memory starts afresh.
TOKEN_CACHE_MAX = 50_000
# A ticket opens one room socket: the client asks for it right before it connects, so a
# few seconds are plenty, and a ticket a proxy logged is of no use to anyone later.
TICKET_TTL = timedelta(seconds=30)

# Login throttles (token buckets, throttle.py), each counting failed logins over LOGIN_WINDOW.
# Per account *and address*, not per account: a per-account lock would let anyone lock
# the real user out from everywhere by typing wrong passwords for their name. This way a
# guesser at one address is slowed, and the real user at their own address is not
# touched. A successful login from an address clears that address's count for the
# account. (A guesser with many addresses is held back by each address's own limits and
# by scrypt; stopping a botnet needs more than a throttle.)
LOGIN_WINDOW = 15 * 60.0
# 10 at once, then one every 90 s: enough for a person who mistypes and tries their old
# passwords; about a thousand guesses a day at one account from one address.
LOGIN_LIMIT = 10
# Failed logins from one address over all accounts: stops one address trying a password
# on many accounts or testing which usernames exist (a 401 for each). High enough that
# an office or a venue behind one address is not stopped by its users' typos; successful
# logins do not count, so a whole audience logging in at once is never throttled.
LOGIN_ADDRESS_LIMIT = 100
# Sign-ups from one address: each is a scrypt hash and a row, and "username taken"
# tells which usernames exist. A venue whose audience signs up on one Wi-Fi address may
# need --signup-limit raised (or 0: no limit).
SIGNUP_WINDOW = 3600.0
SIGNUP_LIMIT = 50


def hash_password(password: str, n: int = SCRYPT_N) -> str:
    salt = secrets.token_bytes(SCRYPT_SALT_BYTES)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=SCRYPT_R, p=SCRYPT_P,
        maxmem=256 * n * SCRYPT_R, dklen=SCRYPT_KEY_BYTES,
    )
    b64 = base64.b64encode
    return f"scrypt${n}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(key).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        n, r, p = int(n), int(r), int(p)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(key)
    actual = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=n, r=r, p=p,
        maxmem=256 * n * r, dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


def too_many_attempts(wait: float) -> TooManyRequests:
    seconds = max(1, math.ceil(wait))  # as Retry-After says it
    return TooManyRequests("too_many_attempts", f"Too many attempts from your address; try again in {seconds} s.", wait)


def _name_key(username: str) -> str:
    """A username as a throttle key part: case-folded (usernames are unique regardless of
    case) and hashed (bounded length, no separators), whether or not such a user exists."""
    return hashlib.sha256(username.casefold().encode()).hexdigest()[:32]


class Accounts:
    def __init__(self, store: Store, secret: bytes, token_ttl: timedelta, scrypt_n: int = SCRYPT_N, *,
                 throttle: Throttle, login_limit: int = LOGIN_LIMIT, login_address_limit: int = LOGIN_ADDRESS_LIMIT,
                 signup_limit: int = SIGNUP_LIMIT) -> None:
        self._store = store
        self._secret = secret
        self._token_ttl = token_ttl
        self._scrypt_n = scrypt_n
        self._throttle = throttle
        self._login_limit = login_limit
        self._login_address_limit = login_address_limit
        self._signup_limit = signup_limit
        # A fixed hash to check against for unknown usernames, so that a login for a
        # missing user takes as long as one with a wrong password.
        self._dummy_hash = hash_password(secrets.token_hex(8), scrypt_n)
        self._logout_listeners: list[Callable[[str], Awaitable[None]]] = []
        # token digest → (its user, until when that answer may be reused): a page visit makes
        # several requests and a join storm thousands, each asking who the token is.
        self._token_users: dict[str, tuple[User, float]] = {}
        # token digest → until when a lookup of it must not be cached (it was logged out).
        self._revoked: dict[str, float] = {}

    def on_logout(self, listener: Callable[[str], Awaitable[None]]) -> None:
        """Call ``listener(token_digest)`` after a token is logged out (the room closes its sockets)."""
        self._logout_listeners.append(listener)

    def token_digest(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    async def sign_up(self, username: str, display_name: str, password: str, address: str) -> User:
        if self._signup_limit:
            wait = await self._throttle.hit(f"signup:{address}", self._signup_limit, SIGNUP_WINDOW)
            if wait is not None:
                raise too_many_attempts(wait)
        loop = asyncio.get_running_loop()
        encoded = await loop.run_in_executor(None, hash_password, password, self._scrypt_n)
        user = await self._store.create_user(username, display_name, encoded, utcnow())
        if user is None:
            raise Conflict("username_taken", f"The username {username!r} is already taken.")
        return user

    def _login_buckets(self, username: str, address: str) -> list[tuple[str, int, bool]]:
        """(key, limit, cleared by a success) of each login throttle in force."""
        buckets = [(f"login-address:{address}", self._login_address_limit, False),
                   (f"login-account:{_name_key(username)}:{address}", self._login_limit, True)]
        return [bucket for bucket in buckets if bucket[1]]

    async def log_in(self, username: str, password: str, address: str) -> tuple[str, User, datetime]:
        # Every attempt is counted before the password is checked (and taken back if it
        # was right): counting only failures would let a burst of parallel guesses all
        # pass the check while the first ones are still hashing.
        counted: list[tuple[str, int, bool]] = []
        for key, limit, cleared in self._login_buckets(username, address):
            wait = await self._throttle.hit(key, limit, LOGIN_WINDOW)
            if wait is not None:
                for done, done_limit, _ in counted:
                    await self._throttle.forgive(done, done_limit, LOGIN_WINDOW)
                raise too_many_attempts(wait)
            counted.append((key, limit, cleared))
        found = await self._store.get_login(username)
        loop = asyncio.get_running_loop()
        encoded = found[1] if found else self._dummy_hash
        ok = await loop.run_in_executor(None, verify_password, password, encoded)
        if not found or not ok:
            raise Unauthorized("bad_credentials", "Wrong username or password.")
        for key, limit, cleared in counted:
            if cleared:
                await self._throttle.reset(key)
            else:
                await self._throttle.forgive(key, limit, LOGIN_WINDOW)
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        expires_at = now + self._token_ttl
        await self._store.create_token(self.token_digest(token), found[0].id, now, expires_at)
        return token, found[0], expires_at

    async def authenticate(self, token: str) -> User | None:
        if not token or len(token) > 200:
            return None
        digest = self.token_digest(token)
        now = time.monotonic()
        cached = self._token_users.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        user = await self._store.get_token_user(digest, utcnow())
        if user is not None and not self.revoked_lately(digest):  # a logout while we asked: not cached
            if len(self._token_users) >= TOKEN_CACHE_MAX:
                self._token_users.clear()  # a crude bound; the next lookups refill it
            self._token_users[digest] = (user, now + TOKEN_CACHE_SECONDS)
        return user

    def forget_token(self, digest: str) -> None:
        """A token was logged out (here or on another process): no cached answer for it, and
        none cached from a lookup that was under way meanwhile."""
        self._token_users.pop(digest, None)
        now = time.monotonic()
        self._revoked = {d: t for d, t in self._revoked.items() if t > now}
        self._revoked[digest] = now + TOKEN_CACHE_SECONDS

    def revoked_lately(self, digest: str) -> bool:
        """Logged out within the last TOKEN_CACHE_SECONDS (a socket opening with it then,
        past the logout's notice, must close itself)."""
        return self._revoked.get(digest, 0.0) > time.monotonic()

    async def issue_ticket(self, token: str, user: User, session_id: int) -> tuple[str, datetime]:
        """A single-use ticket for ``user`` to open ``session_id``'s room socket."""
        ticket = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        expires_at = now + TICKET_TTL
        await self._store.create_ticket(self.token_digest(ticket), self.token_digest(token), user.id, session_id,
                                        now, expires_at)
        return ticket, expires_at

    async def redeem_ticket(self, ticket: str, session_id: int) -> tuple[User, str] | None:
        """(The user, the digest of their token) for a valid ticket to this session's room;
        None otherwise. A ticket works once."""
        if not ticket or len(ticket) > 200:
            return None
        return await self._store.take_ticket(self.token_digest(ticket), session_id, utcnow())

    async def log_out(self, token: str) -> None:
        digest = self.token_digest(token)
        await self._store.revoke_token(digest, utcnow())
        self.forget_token(digest)
        for listener in self._logout_listeners:
            await listener(digest)
