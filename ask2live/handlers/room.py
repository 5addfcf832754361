"""GET /ws/sessions/{id}: the live room's WebSocket. Plumbing only; the room is rooms/."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any
from urllib.parse import urlparse

import orjson
import tornado.httputil
import tornado.iostream
import tornado.web
import tornado.websocket

from ..events import valid_event_id
from ..errors import ApiError, BadRequest, Forbidden, Unauthorized
from ..rooms import CloseCode, Member
from ..wsframe import frame_payload
from ..services import Services
from .base import request_token, error_answer, int_id

log = logging.getLogger(__name__)

# Per-connection outgoing buffer bound (config.outbox_max_bytes). Tornado's is unbounded:
# a client that stops reading would hold the server's memory. The 1 MiB default is
# several thousand chat events, a minute or more of a very busy room; past it the client
# is dropped with 4008 "slow" and resumes from its last id.
# A client whose buffer has not drained for this long is gone or hopeless: dropped.
WRITE_TIMEOUT_SECONDS = 30.0


class RoomSocket(tornado.websocket.WebSocketHandler):
    # A socket is opened with GET only: any other method is a 405 (with Allow: GET) before
    # prepare(), whatever the token, as a client mistaking the URL for REST needs to hear.
    SUPPORTED_METHODS = ("GET",)

    def initialize(self, services: Services) -> None:
        self.services = services
        self.member: Member | None = None
        self.session = None
        self._stalled_since: float | None = None
        self._raw_socket = None
        self._plain = services.config.broadcast == "write_message"

    async def prepare(self) -> None:
        """Refuse before the upgrade: 401 without a valid ticket, token or cookie, 404 for an
        unknown session.

        A browser sends its login cookie; other clients send ``Authorization: Bearer`` or
        a single-use ``?ticket=`` (POST /api/sessions/{id}/ticket). The token itself never
        goes in the URL: proxies and their error logs keep URLs."""
        if self.get_query_argument("token", None) is not None:
            raise BadRequest("token_in_url", "Do not put the token in the URL (proxies log URLs): send "
                             "'Authorization: Bearer <token>', the login cookie, or ?ticket= from "
                             "POST /api/sessions/{id}/ticket.")
        session_id = int_id(self.path_args[0])
        accounts = self.services.accounts
        ticket = self.get_query_argument("ticket", None)
        if ticket is not None:
            redeemed = await accounts.redeem_ticket(ticket, session_id)
            if redeemed is None:
                raise Unauthorized("invalid_ticket", "The ticket is unknown, used, expired or for another session.")
            user, self.token_digest = redeemed
        else:
            token = request_token(self)
            user = await accounts.authenticate(token) if token else None
            if user is None:
                raise Unauthorized("not_signed_in", "Sign in first: the login cookie, 'Authorization: Bearer "
                                   "<token>', or ?ticket= from POST /api/sessions/{id}/ticket.")
            self.token_digest = accounts.token_digest(token)
        self.current_user = user
        self.session = await self.services.schedule.get(session_id, user)
        since = self.get_query_argument("since", None)
        if since is not None and not valid_event_id(since):
            raise BadRequest("invalid_since", "'since' must be an event id such as '1764000000000-0'.")

    def check_origin(self, origin: str) -> bool:
        """A configured origin, or the page's own host (Tornado's default); else a JSON 403."""
        allowed = self.services.config.allowed_origins
        if origin.rstrip("/") in allowed:
            return True
        if urlparse(origin).netloc.lower() == self.request.headers.get("Host", "").lower():
            return True
        raise Forbidden("origin_not_allowed", f"Pages from {origin} may not open this socket.")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = error_answer(self, status_code, kwargs.get("exc_info", (None, None, None))[1])
        self.set_header("Content-Type", "application/json; charset=utf-8")
        self.finish(orjson.dumps(error.to_json()))

    def _request_summary(self) -> str:
        """Tornado's log lines name the request by this: the path, never the query string
        (a ticket, or a token someone put there)."""
        return f"{self.request.method} {self.request.path} ({self.request.remote_ip})"

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # Not Tornado's default: its line has the full URI, and ?token= is a secret. An
        # ApiError or a 4xx HTTPError (a 405) is an answer to the client, not a fault: the
        # access log has its line.
        answer = isinstance(value, tornado.web.HTTPError) and value.status_code < 500
        if not (answer or isinstance(value, ApiError)):
            log.error("Uncaught exception %s %s", self.request.method, self.request.path, exc_info=(typ, value, tb))

    async def open(self, session_id: str) -> None:
        self.set_nodelay(True)  # without it, Nagle holds small frames back ~40 ms
        stream = self.ws_connection.stream
        # The fast path writes to the socket directly; not under TLS (nginx terminates it). The
        # HTTP server's own stream class (httpserver.py counts connections) is a plain IOStream too.
        plain = (isinstance(stream, tornado.iostream.IOStream)
                 and not isinstance(stream, tornado.iostream.SSLIOStream)) and self.services.config.broadcast == "frame"
        self._raw_socket = stream.socket if plain else None
        self.member = Member(transport=self, user=self.current_user, session_id=self.session.id,
                             token_digest=self.token_digest)
        await self.services.rooms.join(self.member, self.session, self.get_query_argument("since", None))
        if self.services.accounts.revoked_lately(self.token_digest):
            # Logged out while this socket was being let in: the logout's notice went out
            # before the socket was in the room, so it closes itself.
            self.close_with(*CloseCode.LOGGED_OUT)
        # Needed no more, and otherwise kept for the socket's whole life, once per socket in
        # a room of thousands: the session (its description can be 5,000 characters) and the
        # upgrade request's headers.
        self.session = None
        self.request.headers = tornado.httputil.HTTPHeaders()

    async def on_message(self, message: str | bytes) -> None:
        if self.member is not None:
            await self.services.rooms.handle(self.member, message)

    def on_close(self) -> None:
        if self.member is not None:
            member, self.member = self.member, None
            asyncio.get_running_loop().create_task(self.services.rooms.leave(member))

    # -- Transport, for the room

    def send_frame(self, frame: bytes) -> None:
        if self._plain:
            self._write_message_plain(frame)
            return
        self._send_built_frame(frame)

    def _send_built_frame(self, frame: bytes) -> None:
        """Write one pre-built frame; drop the client if its buffer is full or stuck.

        The common case, nothing queued for this socket, is one non-blocking send() on the
        socket itself: Tornado's IOStream.write would add a Future and its bookkeeping per
        frame. Whatever the kernel does not take goes to the IOStream, which then owns the
        order (while anything is queued there, every later frame queues behind it)."""
        connection = self.ws_connection
        if connection is None or connection.is_closing():
            return
        stream = connection.stream
        buffered = len(stream._write_buffer) if stream._write_buffer is not None else 0
        if not buffered and self._raw_socket is not None:
            try:
                sent = self._raw_socket.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return  # the peer is gone; Tornado's read side will notice and close
            if sent == len(frame):
                return
            frame = frame[sent:]
        if buffered:
            now = time.monotonic()
            if self._stalled_since is None:
                self._stalled_since = now
            if buffered + len(frame) > self.services.config.outbox_max_bytes or now - self._stalled_since > WRITE_TIMEOUT_SECONDS:
                self.services.metrics.slow_drops.inc()
                self.close_with(*CloseCode.SLOW)
                return
        else:
            self._stalled_since = None
        try:
            stream.write(frame)
        except tornado.iostream.StreamClosedError:
            pass

    def _write_message_plain(self, frame: bytes) -> None:
        """The benchmark's baseline (--broadcast write_message): Tornado's own per-client
        write_message of the event's text, as a plain Tornado server does it."""
        if self.ws_connection is not None and not self.ws_connection.is_closing():
            self.write_message(frame_payload(frame).decode())

    def close_with(self, code: int, reason: str) -> None:
        """Close with a reason. For a slow client the close frame queues behind its (bounded)
        buffer and no more events follow it: if it reads again it gets what was queued, then
        4008, and resumes from the last id; if not, Tornado aborts the stream after its close
        timeout."""
        if self.ws_connection is not None:
            self.close(code, reason)
