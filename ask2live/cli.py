"""The ``ask2live`` command."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import logging
import os
import signal
import socket
import sys

from .app import make_app, running_services
from .config import Config, add_arguments, config_from_args
from .handlers.base import API_BODY_MAX
from .httpserver import LISTEN_BACKLOG, bind, describe_limit, effective_backlog, make_server, raise_open_files_limit
from .workers import fork_workers, worker_count

log = logging.getLogger("ask2live")


async def serve(config: Config, sockets: list[socket.socket]) -> None:
    """One process's server on ``sockets`` (bound by main(), maybe shared with other
    workers), until SIGTERM or SIGINT. Everything asyncio is made here, after any fork."""
    async with running_services(config) as services:
        server = make_server(make_app(services), config, body_max=API_BODY_MAX)
        server.add_sockets(sockets)
        # What start-up made (modules, routes, the services) lives as long as the process:
        # moved out of the collector's reach, it is not traversed again by every full
        # collection, which a server making many short-lived objects (frames, requests)
        # runs often enough to show as latency spikes.
        gc.collect()
        gc.freeze()
        store = services.store.engine.name
        if config.mysql_url:
            store += f", pool of {config.mysql_pool_size} connections"
        worker = "" if config.worker is None else f", worker {config.worker} of {worker_count(config.workers)}"
        log.info("ask2live listening on http://%s:%d (store: %s, room log: %s%s, pid %d)", config.host, config.port,
                 store, services.rooms.room_log.name, worker, os.getpid())
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
    before, soft, hard = raise_open_files_limit()  # before any fork: every worker inherits it
    log.info("open-files limit: soft %s%s, hard %s", describe_limit(soft),
             f" (raised from {describe_limit(before)})" if before != soft else "", describe_limit(hard))
    try:
        sockets = bind(config.host, config.port)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        print(f"ask2live: cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
              f" (another server on that port? choose one with --port)", file=sys.stderr)
        return 2
    config = dataclasses.replace(config, port=sockets[0].getsockname()[1])  # --port 0: the one chosen
    backlog, cap = effective_backlog()
    log.info("listen backlog %d%s", backlog, "" if cap is None else
             f" (asked {LISTEN_BACKLOG}; net.core.somaxconn {cap})" if cap < LISTEN_BACKLOG else
             f" (net.core.somaxconn {cap})")
    if config.workers != 1:
        count = worker_count(config.workers)
        log.info("starting %d workers on port %d (pid %d supervises them)", count, config.port, os.getpid())
        config = dataclasses.replace(config, worker=fork_workers(count))  # only workers return
    asyncio.run(serve(config, sockets))
    return 0
