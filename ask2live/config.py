"""Configuration: read once from flags and environment, then passed in as one frozen value."""

from __future__ import annotations

import argparse
import os
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Mapping

from .accounts import LOGIN_ADDRESS_LIMIT, LOGIN_LIMIT, SCRYPT_N, SIGNUP_LIMIT
from .httpserver import BODY_TIMEOUT, HEADER_TIMEOUT, IDLE_TIMEOUT, MAX_CONNECTIONS_PER_IP
from .store.engines import MYSQL_POOL_SIZE
from .writebehind import FLUSH_INTERVAL

DEFAULT_PORT = 8888
DEFAULT_DATA_DIR = "./ask2live-data"
SECRET_FILE = "secret"
# 256 bits of key for the token HMAC.
SECRET_BYTES = 32
# Two weeks: long enough that a regular is not asked to log in before every session,
# short enough that a token lost on a shared machine dies on its own.
DEFAULT_TOKEN_TTL = timedelta(days=14)

ENV_PREFIX = "ASK2LIVE_"


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    data_dir: Path = Path(DEFAULT_DATA_DIR)
    # None: the embedded SQLite file in data_dir.
    mysql_url: str | None = None
    # None: the in-process room log (one process only).
    redis_url: str | None = None
    # Every Redis key starts with this; two deployments (or test runs) can share a Redis.
    redis_prefix: str = "ask2live"
    secret: bytes = b""
    agora_app_id: str | None = None
    agora_app_certificate: str | None = None
    # Origins allowed to open the room WebSocket; empty: only the server's own host.
    allowed_origins: tuple[str, ...] = ()
    token_ttl: timedelta = DEFAULT_TOKEN_TTL
    scrypt_n: int = SCRYPT_N
    # Per connection: chat/command frames per second and burst (see rooms.TokenBucket).
    rate_per_second: float = 5.0
    rate_burst: float = 10.0
    # Per user, over all their sockets (shared through Redis in production): frames per
    # second and burst. Twice a connection's: a person with two tabs is not throttled,
    # a script spreading frames over fifty sockets is.
    user_rate_per_second: float = 10.0
    user_rate_burst: float = 20.0
    # One user's sockets in one room: tabs and a phone, not a thousand; past it the oldest
    # is closed (4013). 0: no cap.
    user_sockets_per_room: int = 10
    # Per connection outgoing buffer bound (bytes); past it a slow client is dropped.
    outbox_max_bytes: int = 1024 * 1024
    # "writebehind" (Redis Streams or in-process log, batched to the cold store) or "sync"
    # (the old design: every message inserted and re-read before it is broadcast).
    persistence: str = "writebehind"
    # "frame": each event's WebSocket frame is built once and written as bytes to every
    # socket; "write_message": Tornado's per-client write_message (the benchmark baseline).
    broadcast: str = "frame"
    # Write-behind cadence: a batch goes to the cold store this often (or when full).
    flush_interval: float = FLUSH_INTERVAL
    # Throttles, answered with 429 too_many_attempts (accounts.py gives the reasons of the
    # defaults): failed logins per account per address and per address every 15 minutes,
    # sign-ups per address every hour. 0: no limit (load tests sign up thousands).
    login_limit: int = LOGIN_LIMIT
    login_address_limit: int = LOGIN_ADDRESS_LIMIT
    signup_limit: int = SIGNUP_LIMIT
    # HTTP connection limits (httpserver.py), in seconds; the per-address cap counts TCP
    # peers, 0: no cap (behind nginx every peer is nginx).
    header_timeout: float = HEADER_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    max_connections_per_ip: int = MAX_CONNECTIONS_PER_IP
    # Processes serving the port (workers.py); 0: one per core. More than one needs MySQL
    # and Redis: the embedded room log and SQLite store belong to one process.
    workers: int = 1
    # This process's index among the workers; None: the only process (no --workers).
    worker: int | None = None
    # Connections each process keeps to MySQL (store/engines.py gives the default's reason).
    mysql_pool_size: int = MYSQL_POOL_SIZE
    extra: dict = field(default_factory=dict)


def load_secret(data_dir: Path) -> bytes:
    """The secret kept in the data directory, generated there on first start."""
    path = data_dir / SECRET_FILE
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_bytes(SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value.hex() + "\n")
    return value


def read_secret_file(path: str) -> bytes:
    """The secret in a file (--secret-file): its text, without surrounding whitespace, the
    same bytes as that text given to --secret."""
    try:
        value = Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"--secret-file {path}: {exc.strerror}") from None
    if not value:
        raise ValueError(f"--secret-file {path} is empty")
    return value.encode()


def positive_seconds(value: str) -> float:
    seconds = float(value)
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {value}")
    return seconds


def non_negative(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (no cap) or more, not {value}")
    return number


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return number


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str]) -> None:
    def env_default(name: str, default: str | None = None) -> str | None:
        return env.get(ENV_PREFIX + name, default)

    parser.add_argument("--host", default=env_default("HOST", "127.0.0.1"), help="address to listen on")
    parser.add_argument("--port", type=int, default=env_default("PORT", str(DEFAULT_PORT)),
                        help=f"port to listen on (default {DEFAULT_PORT}; 0: any free one) ($ASK2LIVE_PORT)")
    parser.add_argument("--data-dir", default=env_default("DATA_DIR", DEFAULT_DATA_DIR),
                        help="where the embedded SQLite file and the generated secret live ($ASK2LIVE_DATA_DIR)")
    parser.add_argument("--mysql-url", default=env_default("MYSQL_URL"),
                        help="mysql://user:pass@host:3306/db; unset: embedded SQLite ($ASK2LIVE_MYSQL_URL)")
    parser.add_argument("--redis-url", default=env_default("REDIS_URL"),
                        help="redis://host:6379/0; unset: in-process room log ($ASK2LIVE_REDIS_URL)")
    parser.add_argument("--workers", type=non_negative, default=env_default("WORKERS", "1"),
                        help="processes serving the port; 0: one per core; more than one needs --mysql-url "
                             "and --redis-url ($ASK2LIVE_WORKERS)")
    parser.add_argument("--mysql-pool-size", type=positive,
                        default=env_default("MYSQL_POOL_SIZE", str(MYSQL_POOL_SIZE)),
                        help="MySQL connections per process ($ASK2LIVE_MYSQL_POOL_SIZE)")
    parser.add_argument("--redis-prefix", default=env_default("REDIS_PREFIX", "ask2live"),
                        help="prefix of every Redis key ($ASK2LIVE_REDIS_PREFIX)")
    # No env default for the two secret flags: config_from_args() reads the variables, so
    # that a flag of either name wins over both variables.
    parser.add_argument("--secret-file", default=None,
                        help="a file holding the token signing secret (preferred to --secret, which "
                             "`ps` shows to every user) ($ASK2LIVE_SECRET_FILE)")
    parser.add_argument("--secret", default=None,
                        help="token signing secret; neither this nor --secret-file: generated into the "
                             "data dir ($ASK2LIVE_SECRET)")
    parser.add_argument("--flush-interval-ms", type=int,
                        default=env_default("FLUSH_INTERVAL_MS", str(int(FLUSH_INTERVAL * 1000))),
                        help="write-behind batch interval in ms ($ASK2LIVE_FLUSH_INTERVAL_MS)")
    parser.add_argument("--scrypt-n", type=int, default=env_default("SCRYPT_N", str(SCRYPT_N)),
                        help="scrypt cost of new password hashes (a power of 2; lower only for load tests) "
                             "($ASK2LIVE_SCRYPT_N)")
    parser.add_argument("--rate", type=float, default=env_default("RATE", "5"),
                        help="frames per second per connection ($ASK2LIVE_RATE)")
    parser.add_argument("--rate-burst", type=float, default=env_default("RATE_BURST", "10"),
                        help="burst of frames per connection ($ASK2LIVE_RATE_BURST)")
    parser.add_argument("--user-rate", type=float, default=env_default("USER_RATE", "10"),
                        help="frames per second per user over all their sockets; 0: no limit ($ASK2LIVE_USER_RATE)")
    parser.add_argument("--user-rate-burst", type=float, default=env_default("USER_RATE_BURST", "20"),
                        help="burst of frames per user over all their sockets ($ASK2LIVE_USER_RATE_BURST)")
    parser.add_argument("--user-sockets-per-room", type=int, default=env_default("USER_SOCKETS_PER_ROOM", "10"),
                        help="one user's sockets in one room; past it the oldest is closed; 0: no cap "
                             "($ASK2LIVE_USER_SOCKETS_PER_ROOM)")
    parser.add_argument("--header-timeout", type=positive_seconds,
                        default=env_default("HEADER_TIMEOUT", str(HEADER_TIMEOUT)),
                        help="seconds a new connection has to send its request headers ($ASK2LIVE_HEADER_TIMEOUT)")
    parser.add_argument("--idle-timeout", type=positive_seconds, default=env_default("IDLE_TIMEOUT", str(IDLE_TIMEOUT)),
                        help="seconds a kept-alive connection may wait for its next request ($ASK2LIVE_IDLE_TIMEOUT)")
    parser.add_argument("--body-timeout", type=positive_seconds, default=env_default("BODY_TIMEOUT", str(BODY_TIMEOUT)),
                        help="seconds a request body has to arrive ($ASK2LIVE_BODY_TIMEOUT)")
    parser.add_argument("--max-connections-per-ip", type=non_negative,
                        default=env_default("MAX_CONNECTIONS_PER_IP", str(MAX_CONNECTIONS_PER_IP)),
                        help="connections open at once from one TCP peer address; 0: no cap (set 0 behind "
                             "nginx, where every peer is nginx) ($ASK2LIVE_MAX_CONNECTIONS_PER_IP)")
    parser.add_argument("--login-limit", type=int, default=env_default("LOGIN_LIMIT", str(LOGIN_LIMIT)),
                        help="failed logins per account per address per 15 minutes; 0: no limit ($ASK2LIVE_LOGIN_LIMIT)")
    parser.add_argument("--login-address-limit", type=int,
                        default=env_default("LOGIN_ADDRESS_LIMIT", str(LOGIN_ADDRESS_LIMIT)),
                        help="failed logins per address per 15 minutes; 0: no limit ($ASK2LIVE_LOGIN_ADDRESS_LIMIT)")
    parser.add_argument("--signup-limit", type=int, default=env_default("SIGNUP_LIMIT", str(SIGNUP_LIMIT)),
                        help="sign-ups per address per hour; 0: no limit ($ASK2LIVE_SIGNUP_LIMIT)")
    parser.add_argument("--agora-app-id", default=env_default("AGORA_APP_ID"))
    parser.add_argument("--agora-app-certificate", default=env_default("AGORA_APP_CERTIFICATE"))
    parser.add_argument("--allowed-origin", action="append", default=None,
                        help="an Origin allowed to open the room WebSocket (repeatable; "
                             "$ASK2LIVE_ALLOWED_ORIGINS, comma-separated)")
    # The benchmarks' baselines (bench/): the designs we measure against, not for production.
    bench = parser.add_argument_group("benchmark", "baselines for bench/ and loadtest/; leave them at their defaults")
    bench.add_argument("--persistence", choices=("writebehind", "sync"),
                       default=env_default("PERSISTENCE", "writebehind"),
                       help="writebehind (default) or sync, the old DB-per-message design; sync keeps "
                            "its log in-process and ignores --redis-url ($ASK2LIVE_PERSISTENCE)")
    bench.add_argument("--broadcast", choices=("frame", "write_message"),
                       default=env_default("BROADCAST", "frame"),
                       help="frame (default) or write_message, Tornado's per-client write ($ASK2LIVE_BROADCAST)")


def config_from_args(args: argparse.Namespace, env: Mapping[str, str]) -> Config:
    data_dir = Path(args.data_dir)
    if args.workers != 1 and not (args.mysql_url and args.redis_url and args.persistence == "writebehind"):
        raise ValueError(f"--workers {args.workers} needs --mysql-url and --redis-url (and the writebehind "
                         "persistence): without them the room log and the store live in one process")
    secret = choose_secret(args, env) or load_secret(data_dir)
    origins = args.allowed_origin
    if origins is None:
        origins = [o for o in env.get(ENV_PREFIX + "ALLOWED_ORIGINS", "").split(",") if o.strip()]
    return Config(
        host=args.host,
        port=args.port,
        data_dir=data_dir,
        mysql_url=args.mysql_url or None,
        redis_url=args.redis_url or None,
        redis_prefix=args.redis_prefix,
        secret=secret,
        agora_app_id=args.agora_app_id or None,
        agora_app_certificate=args.agora_app_certificate or None,
        allowed_origins=tuple(o.strip().rstrip("/") for o in origins),
        flush_interval=args.flush_interval_ms / 1000,
        scrypt_n=args.scrypt_n,
        persistence=args.persistence,
        broadcast=args.broadcast,
        rate_per_second=args.rate,
        rate_burst=args.rate_burst,
        user_rate_per_second=args.user_rate,
        user_rate_burst=args.user_rate_burst,
        user_sockets_per_room=args.user_sockets_per_room,
        login_limit=args.login_limit,
        login_address_limit=args.login_address_limit,
        signup_limit=args.signup_limit,
        header_timeout=args.header_timeout,
        idle_timeout=args.idle_timeout,
        body_timeout=args.body_timeout,
        max_connections_per_ip=args.max_connections_per_ip,
        workers=args.workers,
        mysql_pool_size=args.mysql_pool_size,
    )


def choose_secret(args: argparse.Namespace, env: Mapping[str, str]) -> bytes | None:
    """The secret from --secret-file or --secret, else from $ASK2LIVE_SECRET_FILE or
    $ASK2LIVE_SECRET; None: neither (the generated one). A flag wins over the variables;
    two flags, or two variables, are a mistake to point out, not to choose between."""
    for file, text, names in ((args.secret_file, args.secret, "--secret-file and --secret"),
                              (env.get(ENV_PREFIX + "SECRET_FILE"), env.get(ENV_PREFIX + "SECRET"),
                               f"{ENV_PREFIX}SECRET_FILE and {ENV_PREFIX}SECRET")):
        if file and text:
            raise ValueError(f"give one of {names}, not both")
        if file:
            return read_secret_file(file)
        if text:
            return text.encode()
    return None
