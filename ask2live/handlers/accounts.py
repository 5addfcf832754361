"""Sign up, log in, log out, who am I."""

from __future__ import annotations

import re

from ..errors import Invalid
from ..timeutil import iso
from .base import TOKEN_COOKIE, ApiHandler

USERNAME_MIN, USERNAME_MAX = 3, 32
USERNAME_RE = re.compile(rf"^[A-Za-z0-9_.-]{{{USERNAME_MIN},{USERNAME_MAX}}}$")
DISPLAY_NAME_MAX = 64
# 8 characters is NIST's minimum; 256 bounds the scrypt input for no good reason to go past.
PASSWORD_MIN = 8
PASSWORD_MAX = 256
# What a login form may send as a username: anything up to twice the longest username
# is looked up (and not found); past that it is a mistake, refused before any work.
LOGIN_USERNAME_MAX = 64


class UsersHandler(ApiHandler):
    requires_login = False

    async def post(self) -> None:
        fields = self.fields()
        # Taken as sent, not trimmed: the document's pattern is the whole value.
        username = fields.string("username", max_length=USERNAME_MAX)
        if not USERNAME_RE.fullmatch(username):
            raise Invalid("invalid_username", "A username is 3 to 32 letters, digits, '_', '.' or '-'.")
        display_name = fields.text("display_name", max_length=DISPLAY_NAME_MAX, required=False) or username
        password = fields.secret("password", min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)
        user = await self.services.accounts.sign_up(username, display_name, password, self.request.remote_ip)
        self.send({"user": user.to_json()}, status=201)


class LoginHandler(ApiHandler):
    requires_login = False

    async def post(self) -> None:
        fields = self.fields()
        username = fields.string("username", max_length=LOGIN_USERNAME_MAX)
        password = fields.secret("password", min_length=1, max_length=PASSWORD_MAX)
        token, user, expires_at = await self.services.accounts.log_in(username, password, self.request.remote_ip)
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
