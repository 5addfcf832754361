"""The HTTP server ``ask2live serve`` runs: Tornado's, with the limits a public address needs.

Tornado's defaults suit a server behind a proxy that has already done this work: a new
connection may take an hour to send its headers, a body has no time limit, an accept()
that fails for want of file descriptors is retried at once (and logged with a traceback)
for as long as it fails, and any one address may hold every connection. Here:

- **timeouts**: a new connection has ``header_timeout`` seconds to send its request's
  headers; between two requests on a kept-alive connection, the next request's headers must
  be complete ``idle_timeout`` seconds after the last response; a body must arrive within
  ``body_timeout`` of its headers. A WebSocket, once upgraded, is the app's (pings).
- **per-address cap**: at most ``max_connections_per_ip`` connections from one TCP peer
  address at once; past it a new connection from that address is closed as soon as it is
  accepted, before anything reads it. 0: no cap. It counts TCP peers, so behind a proxy
  (every connection comes from nginx) it must be 0, and the proxy does the counting.
- **descriptors**: when accept() fails for want of descriptors (or memory), the listening
  socket is left alone until a connection closes, or ``ACCEPT_RETRY_SECONDS`` pass;
  waiting clients stay in the kernel's backlog meanwhile. The connections that have waited
  longest for a request are closed to make room (``REAP_BATCH``).
- **bodies**: a request declaring a body over the API's cap gets a JSON 413
  ``body_too_large`` before any of its body is read; a chunked body is counted as it comes
  and refused the same way once past the cap. The app never holds more than the cap.
- **logs**: each kind of trouble is logged once when it starts, then at most once per
  ``BURST_LOG_SECONDS`` while it lasts, with a count: never a line per connection.

``raise_open_files_limit`` lifts the process's soft open-files limit to its hard limit.
"""

from __future__ import annotations

import asyncio
import copy
import errno
import logging
import resource
import socket
import sys
from typing import Any, Callable

import orjson
import tornado.httpserver
import tornado.iostream
import tornado.netutil
from tornado import gen, httputil
from tornado.ioloop import IOLoop

from .errors import TooLarge

log = logging.getLogger("ask2live.http")

# A new connection must have sent its whole request head this long after it was accepted.
# A request head is a few hundred bytes; a phone on a poor network sends it well within a
# second. Tornado's default is an hour, which let a client hold a descriptor for an hour
# by sending nothing (or one header byte now and then).
HEADER_TIMEOUT = 10.0
# A kept-alive connection may sit this long between a response and the next request's
# complete head. Longer than nginx's default upstream keepalive_timeout (60 s), so that
# behind nginx it is always nginx that closes an idle connection; if the app closed it
# first, nginx could send a request into the closing connection and answer 502 (it does
# not retry a POST on another connection).
IDLE_TIMEOUT = 75.0
# A request body must have arrived this long after its head. The largest the API takes
# (64 KiB) needs about 26 s over a 2G phone link (20 kbit/s); 150 clients trickling bodies
# used to hold about a megabyte each, indefinitely.
BODY_TIMEOUT = 30.0
# Connections open at once from one TCP peer address (0: no cap). A hall of a hundred
# people behind one NAT'd Wi-Fi (a room socket and a keep-alive connection or two each)
# fits; one address holding more is a script, and without a cap one address could take
# every descriptor the process has. Behind nginx every peer is nginx: set it to 0 there.
MAX_CONNECTIONS_PER_IP = 256

# The HTTP server's own body limit, above the API's (the caller's body_max): bodies are
# refused here with a JSON 413 before Tornado's limit is reached, so this only stops a
# request that gets past that check from being buffered; the margin is for nothing else.
BODY_MAX_MARGIN = 4 * 1024
# After refusing a declared body, keep reading (and dropping) what the client sends, for
# up to this long and this many bytes, before closing. A client that writes its whole body
# before it reads (Python's http.client, many scripts) would otherwise get a connection
# reset instead of the 413: closing a socket with unread data sends a TCP RST, and the
# client's kernel may discard the response it had received. 16 MiB covers the "5 MB
# upload" that prompted this; nothing is kept, so the cost is bandwidth, not memory.
REFUSED_BODY_LINGER_SECONDS = 5.0
REFUSED_BODY_LINGER_BYTES = 16 * 1024 * 1024
READ_CHUNK = 64 * 1024

# Paused after accept() failed for want of descriptors, the server tries again this often
# (and at once whenever one of its connections closes). Short enough that a descriptor
# freed outside the server (a database connection) is used within half a second; long
# enough that a server at its limit does not spin: Tornado retried at once, and a server at
# 256 descriptors spent 1.5 cores writing 185 MB of tracebacks in 16 s.
ACCEPT_RETRY_SECONDS = 0.5
# Out of descriptors, the server also closes up to this many of the connections that have
# waited longest for a request (idle keep-alives, slow or silent new connections), as nginx
# does with idle keep-alive connections, so that a client with a request to make gets in
# at once instead of after every idle socket queued before it has timed out. Only those
# that have waited at least REAP_MIN_WAIT: one accepted a moment ago may have its request
# in the kernel's buffer, not yet read.
REAP_BATCH = 32
REAP_MIN_WAIT = 1.0
# The kernel's queue of connections waiting for accept() on the listening socket. Tornado's
# default, 128, overflowed in a join storm (an audience joining at once while the process
# was busy sending welcomes: 340 connection attempts dropped, each retried by the client
# after a second or more of SYN back-off); 1024 holds a full hall arriving within the
# same moment, per process. The kernel silently caps it at net.core.somaxconn
# (SOMAXCONN_FILE), which the start-up log shows: raise that sysctl if it is lower.
LISTEN_BACKLOG = 1024
SOMAXCONN_FILE = "/proc/sys/net/core/somaxconn"
# Connections taken per readiness event, as Tornado does (its listen backlog): enough to
# drain a burst, few enough that the loop's other work is not starved.
ACCEPT_BATCH = 128
# accept() errors that concern one queued connection only (it was aborted, or the network
# failed under it; accept(2) says to treat these like EAGAIN): skip it and go on. Any other
# error (EMFILE, ENFILE, ENOBUFS, ENOMEM: no resources now) pauses accepting.
PER_CONNECTION_ERRORS = {getattr(errno, name) for name in (
    "ECONNABORTED", "EPROTO", "EPERM", "ENETDOWN", "ENOPROTOOPT", "EHOSTDOWN", "ENONET", "EHOSTUNREACH",
    "EOPNOTSUPP", "ENETUNREACH") if hasattr(errno, name)}
# One line when a kind of trouble starts, then at most one summary line per this window
# while it goes on.
BURST_LOG_SECONDS = 10.0


class BurstLog:
    """Logs the first event of a burst, then counts: one summary line per window while
    events keep coming, nothing once they stop. A server refusing thousands of connections
    a second must not write a line (let alone a traceback) for each."""

    def __init__(self, what: str, window: float = BURST_LOG_SECONDS) -> None:
        self.what = what
        self.window = window
        self._count = 0
        self._timer: object | None = None

    def event(self, message: str, *args: Any) -> None:
        if self._timer is None:
            log.warning(message, *args)
            self._timer = IOLoop.current().call_later(self.window, self._end_window)
        else:
            self._count += 1

    def _end_window(self) -> None:
        if not self._count:
            self._timer = None
            return
        log.warning("%s: %d more in the last %.0f s", self.what, self._count, self.window)
        self._count = 0
        self._timer = IOLoop.current().call_later(self.window, self._end_window)


def describe_limit(value: int) -> str:
    return "unlimited" if value == resource.RLIM_INFINITY else str(value)


def raise_open_files_limit() -> tuple[int, int, int]:
    """Lift the soft open-files limit to the hard limit: every connection is a descriptor,
    and the usual soft default (1024) is a leftover of select(); the event loop uses epoll.
    Returns (soft before, soft now, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return soft, soft, hard
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        # An unlimited hard limit the kernel will not grant as a soft one (macOS): keep it.
        return soft, soft, hard
    return soft, hard, hard


def declared_length(headers: httputil.HTTPHeaders) -> int | None:
    """The body length a request declares, if it is a number (Tornado refuses the rest)."""
    value = headers.get("Content-Length")
    if value is None:
        return None
    pieces = {p.strip() for p in value.split(",")}  # a proxy may repeat the header
    if len(pieces) != 1:
        return None
    piece = pieces.pop()
    return int(piece) if piece.isdigit() else None


class _CountedStream(tornado.iostream.IOStream):
    """An IOStream that tells the server when its socket is closed, however that happens
    (HTTP, WebSocket, a refused body), so the per-address counts stay true."""

    def __init__(self, connection: socket.socket, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._on_close: Callable[[], None] | None = on_close

    def close_fd(self) -> None:
        # Tornado calls close_fd exactly once, whichever way the stream is closed.
        try:
            super().close_fd()
        finally:
            callback, self._on_close = self._on_close, None
            if callback is not None:
                callback()


class _Acceptor:
    """Accepts connections on one listening socket; on running out of descriptors it stops
    watching the socket until resume() (a connection closed) or a retry timer."""

    def __init__(self, sock: socket.socket, on_connection: Callable[[socket.socket, Any], None],
                 on_exhausted: Callable[[OSError], None]) -> None:
        self.sock = sock
        self.on_connection = on_connection
        self.on_exhausted = on_exhausted
        self.io_loop = IOLoop.current()
        self.paused = False
        self.removed = False
        self._retry: object | None = None
        self.io_loop.add_handler(sock, self._ready, IOLoop.READ)

    def _ready(self, fd: Any, events: int) -> None:
        for _ in range(ACCEPT_BATCH):
            if self.removed or self.paused:
                return
            try:
                connection, address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in PER_CONNECTION_ERRORS:
                    continue
                self._pause(exc)
                return
            self.on_connection(connection, address)

    def _pause(self, exc: OSError) -> None:
        self.paused = True
        self.io_loop.remove_handler(self.sock)
        self._retry = self.io_loop.call_later(ACCEPT_RETRY_SECONDS, self.resume)
        self.on_exhausted(exc)

    def resume(self) -> None:
        if not self.paused or self.removed:
            return
        self.paused = False
        if self._retry is not None:
            self.io_loop.remove_timeout(self._retry)
            self._retry = None
        self.io_loop.add_handler(self.sock, self._ready, IOLoop.READ)

    def remove(self) -> None:
        if self.removed:
            return
        self.removed = True
        if self._retry is not None:
            self.io_loop.remove_timeout(self._retry)
        if not self.paused:
            self.io_loop.remove_handler(self.sock)


def refusal(limit: int) -> tuple[bytes, httputil.HTTPHeaders]:
    """The JSON 413 body and its headers, in the API's error envelope."""
    body = orjson.dumps(TooLarge("body_too_large", f"The request body is larger than {limit} bytes.").to_json())
    headers = httputil.HTTPHeaders({
        "Content-Type": "application/json; charset=utf-8",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
    })
    return body, headers


class _BodyCap(httputil.HTTPMessageDelegate):
    """Between Tornado's connection and the app: refuses a body over ``limit`` with a JSON
    413, and never passes the app more than ``limit`` bytes."""

    def __init__(self, server: "Server", delegate: httputil.HTTPMessageDelegate,
                 request_conn: httputil.HTTPConnection, server_conn: Any) -> None:
        self.server = server
        self.delegate = delegate
        self.request_conn = request_conn
        self.server_conn = server_conn
        self.limit = server.body_max
        self.received = 0
        self.refused = False  # over the cap: nothing more goes to the app
        self.answered = False
        self.delegate_closed = False

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> Any:
        self.server.waiting.pop(self.server_conn, None)  # no longer waiting: being served
        declared = declared_length(headers)
        if declared is not None and declared > self.limit:
            # Before Tornado reads a byte of it (or sends 100 Continue): take the stream over,
            # answer, drain for a while, close.
            self.refused = self.answered = self.delegate_closed = True
            self.server.refuse_declared_body(self.request_conn, declared)
            return None
        if "Transfer-Encoding" in headers:
            # Chunked (Tornado refuses any other coding). Tornado checks each chunk's
            # announced size against its own limit before reading it and answers an empty
            # 400 past it; the count is kept here instead, on what actually arrives.
            self.request_conn.set_max_body_size(sys.maxsize)
        return self.delegate.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        self.received += len(chunk)
        if not self.refused and self.received <= self.limit:
            return self.delegate.data_received(chunk)
        if not self.refused:
            self.refused = True
            self.server.refused_bodies.event("refused a chunked request body past %d bytes (413 body_too_large) "
                                             "from %s", self.limit, self.request_conn.context)
            self._close_delegate()  # the app lets go of what it had buffered
        if not self.answered and self.received > self.limit + REFUSED_BODY_LINGER_BYTES:
            # Still coming: answer now; Tornado closes the connection once the answer is out.
            self._answer(close=True)
        return None

    def finish(self) -> None:
        if not self.refused:
            self.delegate.finish()
        elif not self.answered:
            self._answer(close=False)  # the whole body was read: the connection can go on

    def on_connection_close(self) -> None:
        self._close_delegate()

    def _close_delegate(self) -> None:
        if not self.delegate_closed:
            self.delegate_closed = True
            self.delegate.on_connection_close()

    def _answer(self, close: bool) -> None:
        self.answered = True
        body, headers = refusal(self.limit)
        if close:
            headers["Connection"] = "close"
        self.request_conn.write_headers(httputil.ResponseStartLine("HTTP/1.1", 413, "Payload Too Large"),
                                        headers, chunk=body)
        self.request_conn.finish()


class Server(tornado.httpserver.HTTPServer):
    """Tornado's HTTPServer (with ``xheaders``: nginx's X-Real-IP is the client address)
    plus the limits in this module's docstring."""

    def initialize(self, request_callback: Any, *, body_max: int, header_timeout: float = HEADER_TIMEOUT,
                   idle_timeout: float = IDLE_TIMEOUT, body_timeout: float = BODY_TIMEOUT,
                   max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP, **kwargs: Any) -> None:
        super().initialize(request_callback, xheaders=True, idle_connection_timeout=header_timeout,
                           body_timeout=body_timeout, max_body_size=body_max + BODY_MAX_MARGIN, **kwargs)
        self.body_max = body_max
        # Tornado has one timer per request, from when it starts waiting for the request to
        # its last header byte, read from the connection's params when the wait starts. The
        # first request of a connection gets conn_params (the header timeout, counted from
        # accept); start_request() hands every later one keepalive_params (the idle timeout).
        self.keepalive_params = copy.copy(self.conn_params)
        self.keepalive_params.header_timeout = idle_timeout
        self.max_connections_per_ip = max_connections_per_ip
        self.open_by_address: dict[str, int] = {}
        # Connections waiting for a request's head (new, or kept alive between requests),
        # oldest wait first: server connection -> when its wait began.
        self.waiting: dict[Any, float] = {}
        self._acceptors: list[_Acceptor] = []
        self._draining: set[asyncio.Task] = set()
        self.capped = BurstLog("connections refused by the per-address cap")
        self.exhausted = BurstLog("accept() out of descriptors")
        self.reaped = BurstLog("waiting connections closed to make room")
        self.refused_bodies = BurstLog("request bodies refused")

    @property
    def open_connections(self) -> int:
        return sum(self.open_by_address.values())

    # -- accepting

    def add_sockets(self, sockets: Any) -> None:
        # As TCPServer.add_sockets, with this module's accept loop; stop() calls the
        # remover it finds in _handlers.
        for sock in sockets:
            acceptor = _Acceptor(sock, self._accepted, self._out_of_descriptors)
            self._acceptors.append(acceptor)
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = acceptor.remove

    def _accepted(self, connection: socket.socket, address: Any) -> None:
        peer = address[0] if isinstance(address, tuple) else ""  # "": a Unix socket
        count = self.open_by_address.get(peer, 0)
        if self.max_connections_per_ip and count >= self.max_connections_per_ip:
            connection.close()
            self.capped.event("refusing connections from %s: %d open, the cap (--max-connections-per-ip)",
                              peer, count)
            return
        self.open_by_address[peer] = count + 1
        try:
            stream = _CountedStream(connection, lambda: self._closed(peer), max_buffer_size=self.max_buffer_size,
                                    read_chunk_size=self.read_chunk_size)
        except Exception:
            connection.close()
            self._closed(peer)
            raise
        self.handle_stream(stream, address)

    def _closed(self, peer: str) -> None:
        count = self.open_by_address.get(peer, 0) - 1
        if count > 0:
            self.open_by_address[peer] = count
        else:
            self.open_by_address.pop(peer, None)
        for acceptor in self._acceptors:
            acceptor.resume()  # a descriptor was freed: try the backlog again now

    def _out_of_descriptors(self, exc: OSError) -> None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.exhausted.event("not accepting connections: %s (open-files limit %s, %d connections open); "
                             "trying again as connections close, at least every %.1f s",
                             exc.strerror, describe_limit(soft), self.open_connections, ACCEPT_RETRY_SECONDS)
        self._reap()

    def _reap(self) -> None:
        """Close the connections that have waited longest for a request (at most REAP_BATCH,
        none that has waited less than REAP_MIN_WAIT)."""
        oldest = IOLoop.current().time() - REAP_MIN_WAIT
        victims = []
        for server_conn, since in self.waiting.items():  # oldest first
            if since > oldest or len(victims) == REAP_BATCH:
                break
            victims.append(server_conn)
        for server_conn in victims:
            del self.waiting[server_conn]
            server_conn.stream.close()  # Tornado's request loop ends quietly on a closed stream
        if victims:
            self.reaped.event("out of descriptors: closed %d connections that had waited longest for a request",
                              len(victims))

    # -- requests

    def start_request(self, server_conn: Any, request_conn: httputil.HTTPConnection) -> httputil.HTTPMessageDelegate:
        server_conn.params = self.keepalive_params  # for the requests after this one
        self.waiting.pop(server_conn, None)
        self.waiting[server_conn] = IOLoop.current().time()
        delegate = super().start_request(server_conn, request_conn)
        return _BodyCap(self, delegate, request_conn, server_conn)

    def on_close(self, server_conn: Any) -> None:
        self.waiting.pop(server_conn, None)
        super().on_close(server_conn)

    def refuse_declared_body(self, request_conn: Any, declared: int) -> None:
        self.refused_bodies.event("refused a request body of %d bytes (413 body_too_large; the cap is %d) "
                                  "from %s", declared, self.body_max, request_conn.context)
        stream = request_conn.detach()
        task = asyncio.ensure_future(self._answer_then_drain(stream, declared))
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def _answer_then_drain(self, stream: tornado.iostream.IOStream, declared: int) -> None:
        body, headers = refusal(self.body_max)
        headers["Connection"] = "close"
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.get_all())
        try:
            await stream.write(f"HTTP/1.1 413 Payload Too Large\r\n{head}\r\n".encode("latin-1") + body)
            deadline = IOLoop.current().time() + REFUSED_BODY_LINGER_SECONDS
            left = min(declared, REFUSED_BODY_LINGER_BYTES)
            while left > 0:
                data = await gen.with_timeout(deadline, stream.read_bytes(min(left, READ_CHUNK), partial=True),
                                              quiet_exceptions=tornado.iostream.StreamClosedError)
                left -= len(data)
        except (tornado.iostream.StreamClosedError, TimeoutError):
            pass  # the client went away, or took too long: nothing more to tell it
        finally:
            stream.close()


def bind(host: str, port: int) -> list[socket.socket]:
    """The listening sockets, with LISTEN_BACKLOG; bound before any worker is forked, so
    that every worker accepts from the same ones."""
    return tornado.netutil.bind_sockets(port, address=host, backlog=LISTEN_BACKLOG)


def effective_backlog(requested: int = LISTEN_BACKLOG) -> tuple[int, int | None]:
    """(the backlog the kernel grants, its cap net.core.somaxconn or None if unreadable)."""
    try:
        with open(SOMAXCONN_FILE) as f:
            cap = int(f.read().strip())
    except (OSError, ValueError):
        return requested, None
    return min(requested, cap), cap


def make_server(app: Any, config: Any, body_max: int) -> Server:
    """The server for ``app`` with ``config``'s limits; ``body_max`` is the largest body the
    API reads (handlers/base.py API_BODY_MAX)."""
    return Server(app, body_max=body_max, header_timeout=config.header_timeout, idle_timeout=config.idle_timeout,
                  body_timeout=config.body_timeout, max_connections_per_ip=config.max_connections_per_ip)
