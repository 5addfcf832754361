"""Sign up, log in, log out, who am I."""

from __future__ import annotations

import re

from ..errors import Invalid
from ..timeutil import iso
from .base import TOKEN_COOKIE, ApiHandler

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
DISPLAY_NAME_MAX = 64
# 8 characters is NIST's minimum; 256 bounds the scrypt input for no good reason to go past.
PASSWORD_MIN = 8
PASSWORD_MAX = 256


class UsersHandler(ApiHandler):
    requires_login = False

    async def post(self) -> None:
        fields = self.fields()
        username = fields.text("username", max_length=32)
        if not USERNAME_RE.match(username):
            raise Invalid("invalid_username", "A username is 3 to 32 letters, digits, '_', '.' or '-'.")
        display_name = fields.text("display_name", max_length=DISPLAY_NAME_MAX, required=False) or username
        password = fields.secret("password", min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
        user = await self.services.accounts.sign_up(username, display_name, password)
        self.send({"user": user.to_json()}, status=201)


class LoginHandler(ApiHandler):
    requires_login = False

    async def post(self) -> None:
        fields = self.fields()
        username = fields.text("username", max_length=64)
        password = fields.secret("password", min_length=1, max_length=PASSWORD_MAX)
        token, user, expires_at = await self.services.accounts.log_in(username, password)
        self.set_cookie(TOKEN_COOKIE, token, expires=expires_at, httponly=True, secure=True,
                        samesite="Strict", path="/")
        self.send({"token": token, "user": user.to_json(), "expires_at": iso(expires_at)})


class LogoutHandler(ApiHandler):
    async def post(self) -> None:
        await self.services.accounts.log_out(self.token)
        self.clear_cookie(TOKEN_COOKIE, path="/")
        self.send({"ok": True})


class MeHandler(ApiHandler):
    async def get(self) -> None:
        self.send({"user": self.user.to_json()})
