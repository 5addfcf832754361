"""The one place that wires the modules together."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

import tornado.web

from .accounts import Accounts
from .config import Config
from .cuesheet import CueSheet
from .handlers import accounts, meta, questions, sessions
from .handlers.base import NotFoundHandler
from .schedule import Schedule
from .services import Services
from .store import IdAllocator, open_store


def routes(services: Services) -> list:
    deps = {"services": services}
    return [
        (r"/api/users", accounts.UsersHandler, deps),
        (r"/api/login", accounts.LoginHandler, deps),
        (r"/api/logout", accounts.LogoutHandler, deps),
        (r"/api/me", accounts.MeHandler, deps),
        (r"/api/sessions", sessions.SessionsHandler, deps),
        (r"/api/sessions/([0-9]{1,19})", sessions.SessionHandler, deps),
        (r"/api/sessions/([0-9]{1,19})/(start|end|confirm)", sessions.SessionActionHandler, deps),
        (r"/api/sessions/([0-9]{1,19})/reservation", sessions.ReservationHandler, deps),
        (r"/api/sessions/([0-9]{1,19})/reservations", sessions.ReservationsHandler, deps),
        (r"/api/sessions/([0-9]{1,19})/questions", questions.SessionQuestionsHandler, deps),
        (r"/api/questions/([0-9]{1,19})", questions.QuestionHandler, deps),
        (r"/api/questions/([0-9]{1,19})/vote", questions.VoteHandler, deps),
        (r"/api/questions/([0-9]{1,19})/(answer|pin|hide)", questions.ModerationHandler, deps),
        (r"/api/openapi.json", meta.OpenApiHandler, deps),
        (r"/healthz", meta.HealthHandler, deps),
    ]


@asynccontextmanager
async def running_services(config: Config) -> AsyncIterator[Services]:
    """Open the store and build every service; close them on the way out."""
    store = await open_store(config.mysql_url, config.data_dir)
    try:
        schedule = Schedule(store)
        services = Services(
            config=config,
            store=store,
            accounts=Accounts(store, config.secret, config.token_ttl, config.scrypt_n),
            schedule=schedule,
            cuesheet=CueSheet(store, schedule, IdAllocator(store, "questions")),
        )
        yield services
    finally:
        await store.close()


def make_app(services: Services) -> tornado.web.Application:
    return tornado.web.Application(
        routes(services),
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services},
    )
