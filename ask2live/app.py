"""The one place that wires the modules together."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import tornado.web
from tornado.log import access_log

from .accounts import Accounts
from .cache.memory import MemoryRoomLog
from .cache.redis_log import RedisRoomLog
from .cache.roomlog import RoomLog
from .cache.sync_log import SyncRoomLog
from .config import Config
from .cuesheet import CueSheet
from .handlers import accounts, meta, questions, room, sessions, voice
from .handlers.base import NotFoundHandler
from .metrics import Metrics
from .protocol import CHAT_MAX
from .rooms import Rooms
from .schedule import Schedule
from .services import Services
from .store import IdAllocator, Store, open_store
from .tasks import cancel_and_wait
from .throttle import MemoryThrottle, RedisThrottle, Throttle
from .voice import Voice
from .writebehind import WriteBehind

# Tornado sends no pings unless told to; without them a vanished peer (a phone that lost
# its network) never triggers on_close and stays "present" for ever.
# A peer silent for a whole interval after a ping is dropped (Tornado caps the timeout
# at the interval).
WEBSOCKET_PING_INTERVAL = 20
WEBSOCKET_PING_TIMEOUT = 20
# The largest client frame: the longest chat line written the most expensive legal way
# (every character a \uXXXX\uXXXX surrogate pair, 12 bytes, as some JSON encoders do),
# plus the envelope.
WEBSOCKET_MAX_MESSAGE = CHAT_MAX * 12 + 1024


def routes(services: Services) -> list:
    deps = {"services": services}
    static = str(Path(__file__).resolve().parent / "static")
    session = r"/api/sessions/([0-9]{1,19})"
    return [
        (r"/api/users", accounts.UsersHandler, deps),
        (r"/api/login", accounts.LoginHandler, deps),
        (r"/api/logout", accounts.LogoutHandler, deps),
        (r"/api/me", accounts.MeHandler, deps),
        (r"/api/sessions", sessions.SessionsHandler, deps),
        (session, sessions.SessionHandler, deps),
        (session + r"/(start|end|confirm)", sessions.SessionActionHandler, deps),
        (session + r"/reservation", sessions.ReservationHandler, deps),
        (session + r"/reservations", sessions.ReservationsHandler, deps),
        (session + r"/questions", questions.SessionQuestionsHandler, deps),
        (session + r"/voice/token", voice.VoiceTokenHandler, deps),
        (session + r"/ticket", sessions.TicketHandler, deps),
        (session + r"/audience", sessions.AudienceHandler, deps),
        (r"/api/questions/([0-9]{1,19})", questions.QuestionHandler, deps),
        (r"/api/questions/([0-9]{1,19})/vote", questions.VoteHandler, deps),
        (r"/api/questions/([0-9]{1,19})/(answer|pin|hide)", questions.ModerationHandler, deps),
        (r"/api/openapi.json", meta.OpenApiHandler, deps),
        (r"/api/limits", meta.LimitsHandler, deps),
        (r"/healthz", meta.HealthHandler, deps),
        (r"/metrics", meta.MetricsHandler, deps),
        (r"/ws/sessions/([0-9]{1,19})", room.RoomSocket, deps),
        # The web client: one page (hash routes) and its static files, no build step.
        (r"/()", meta.StaticHandler, {"path": static, "default_filename": "index.html"}),
        (r"/static/(.*)", meta.StaticHandler, {"path": static}),
    ]


# How often the dependency gauges (Redis, MySQL up; write-behind backlog) are refreshed.
DEPENDENCY_CHECK_SECONDS = 2.0


async def watch_dependencies(services: Services) -> None:
    metrics, log_ = services.metrics, services.rooms.room_log
    while True:
        for name, check in (("mysql", services.store.ping), ("redis", log_.ping)):
            if name == "redis" and not services.config.redis_url:
                continue
            try:
                await asyncio.wait_for(check(), DEPENDENCY_CHECK_SECONDS)
                metrics.up.labels(name).set(1)
            except Exception:
                metrics.up.labels(name).set(0)
        try:
            metrics.backlog.set(await log_.backlog())
        except Exception:
            pass
        oldest = log_.oldest_unflushed_ms()
        metrics.oldest_unflushed.set(0 if oldest is None else max(0.0, time.time() - oldest / 1000))
        await asyncio.sleep(DEPENDENCY_CHECK_SECONDS)


def make_room_log(config: Config, store: Store) -> RoomLog:
    if config.persistence == "sync":
        return SyncRoomLog(store)
    if config.redis_url:
        # One consumer per process, kept across its restarts: a worker restarted with the
        # same index finds the entries it had read and not yet flushed.
        consumer = f"{socket.gethostname()}:{config.port}"
        if config.worker is not None:
            consumer += f":{config.worker}"
        return RedisRoomLog(config.redis_url, store, prefix=config.redis_prefix, consumer=consumer)
    return MemoryRoomLog(store)


def make_throttle(config: Config) -> Throttle:
    """In Redis when there is one, so that every process counts the same attempts."""
    if config.redis_url:
        return RedisThrottle(config.redis_url, config.redis_prefix)
    return MemoryThrottle()


@asynccontextmanager
async def running_services(config: Config) -> AsyncIterator[Services]:
    """Open the store and the room log, build every service; close them on the way out."""
    store = await open_store(config.mysql_url, config.data_dir, config.mysql_pool_size)
    try:
        schedule = Schedule(store)
        cuesheet = CueSheet(store, schedule, IdAllocator(store, "questions"))
        voice_service = Voice(config.agora_app_id, config.agora_app_certificate)
        metrics = Metrics()
        store.observe_interactions(metrics.observe_store)
        room_log = make_room_log(config, store)
        throttle = make_throttle(config)
        rooms = Rooms(room_log, store, schedule, cuesheet, voice_service, metrics, throttle,
                      rate=(config.rate_per_second, config.rate_burst),
                      user_rate=(config.user_rate_per_second, config.user_rate_burst),
                      sockets_per_user=config.user_sockets_per_room,
                      process_name=f"{socket.gethostname()}:{config.port}:{os.getpid()}")
        write_behind = WriteBehind(room_log, store, interval=config.flush_interval)
        write_behind.stats.observers.append(metrics.observe_flush)
        write_behind.stats.failure_observers.append(metrics.flush_failures.inc)
        metrics.track(metrics.rooms, lambda: rooms.local_counts()[0])
        metrics.track(metrics.connections, lambda: rooms.local_counts()[1])
        accounts = Accounts(store, config.secret, config.token_ttl, config.scrypt_n, throttle=throttle,
                            login_limit=config.login_limit, login_address_limit=config.login_address_limit,
                            signup_limit=config.signup_limit)
        # A logged-out token's room sockets close, on every process.
        accounts.on_logout(rooms.on_token_revoked)
        # ... and every process forgets the token it may have cached.
        rooms.when_token_revoked(accounts.forget_token)
        services = Services(
            config=config,
            store=store,
            accounts=accounts,
            schedule=schedule,
            cuesheet=cuesheet,
            voice=voice_service,
            rooms=rooms,
            write_behind=write_behind,
            metrics=metrics,
            throttle=throttle,
        )
        await rooms.start()
        write_behind.start()
        watcher = asyncio.create_task(watch_dependencies(services), name="dependencies")
        try:
            yield services
        finally:
            await cancel_and_wait(watcher)
            await write_behind.close()
            await rooms.close()
            await throttle.close()
    finally:
        await store.close()


def log_request(handler: tornado.web.RequestHandler) -> None:
    """Tornado's access log line, without query strings: a room socket's ?token= is a secret."""
    status = handler.get_status()
    logger = access_log.info if status < 400 else access_log.warning if status < 500 else access_log.error
    logger("%d %s %s (%s) %.2fms", status, handler.request.method, handler.request.path,
           handler.request.remote_ip, 1000.0 * handler.request.request_time())


def make_app(services: Services) -> tornado.web.Application:
    return tornado.web.Application(
        routes(services),
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services},
        websocket_ping_interval=WEBSOCKET_PING_INTERVAL,
        websocket_ping_timeout=WEBSOCKET_PING_TIMEOUT,
        websocket_max_message_size=WEBSOCKET_MAX_MESSAGE,
        log_function=log_request,
    )
