"""The ``ask2live`` command."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .app import make_app, running_services
from .config import Config, add_arguments, config_from_args
from .handlers.base import API_BODY_MAX
from .httpserver import describe_limit, make_server, raise_open_files_limit

log = logging.getLogger("ask2live")


async def serve(config: Config) -> None:
    before, soft, hard = raise_open_files_limit()
    log.info("open-files limit: soft %s%s, hard %s", describe_limit(soft),
             f" (raised from {describe_limit(before)})" if before != soft else "", describe_limit(hard))
    async with running_services(config) as services:
        server = make_server(make_app(services), config, body_max=API_BODY_MAX)
        server.listen(config.port, address=config.host)
        log.info("ask2live listening on http://%s:%d (store: %s, room log: %s)", config.host, config.port,
                 services.store.engine.name, services.rooms.room_log.name)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("shutting down")
        server.stop()
        await server.close_all_connections()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ask2live", description="Structured live Q&A server.")
    commands = parser.add_subparsers(dest="command")
    serve_parser = commands.add_parser("serve", help="run the server")
    add_arguments(serve_parser, os.environ)
    args = parser.parse_args(argv)
    if args.command != "serve":
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_from_args(args, os.environ)
    except ValueError as exc:
        print(f"ask2live: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(config))
    return 0
