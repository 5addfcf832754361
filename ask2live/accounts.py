"""Accounts: password hashing, sign-up, log-in and bearer tokens."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from .errors import Conflict, Unauthorized
from .models import User
from .store import Store
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


class Accounts:
    def __init__(self, store: Store, secret: bytes, token_ttl: timedelta, scrypt_n: int = SCRYPT_N) -> None:
        self._store = store
        self._secret = secret
        self._token_ttl = token_ttl
        self._scrypt_n = scrypt_n
        # A fixed hash to check against for unknown usernames, so that a login for a
        # missing user takes as long as one with a wrong password.
        self._dummy_hash = hash_password(secrets.token_hex(8), scrypt_n)

    def token_digest(self, token: str) -> str:
        return hmac.new(self._secret, token.encode(), hashlib.sha256).hexdigest()

    async def sign_up(self, username: str, display_name: str, password: str) -> User:
        loop = asyncio.get_running_loop()
        encoded = await loop.run_in_executor(None, hash_password, password, self._scrypt_n)
        user = await self._store.create_user(username, display_name, encoded, utcnow())
        if user is None:
            raise Conflict("username_taken", f"The username {username!r} is already taken.")
        return user

    async def log_in(self, username: str, password: str) -> tuple[str, User, datetime]:
        found = await self._store.get_login(username)
        loop = asyncio.get_running_loop()
        encoded = found[1] if found else self._dummy_hash
        ok = await loop.run_in_executor(None, verify_password, password, encoded)
        if not found or not ok:
            raise Unauthorized("bad_credentials", "Wrong username or password.")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        now = utcnow()
        expires_at = now + self._token_ttl
        await self._store.create_token(self.token_digest(token), found[0].id, now, expires_at)
        return token, found[0], expires_at

    async def authenticate(self, token: str) -> User | None:
        if not token or len(token) > 200:
            return None
        return await self._store.get_token_user(self.token_digest(token), utcnow())

    async def log_out(self, token: str) -> None:
        await self._store.revoke_token(self.token_digest(token), utcnow())
