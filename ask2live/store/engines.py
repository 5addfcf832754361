"""The two cold-store engines, MySQL (aiomysql pool) and SQLite (one worker thread).

An engine holds exactly the dialect differences and the connection handling; the SQL
itself is written once in ``store/queries.py`` with ``?`` placeholders. Each engine runs
an *interaction*: an async function given a :class:`Transaction`, run inside one
database transaction that commits when the function returns and rolls back if it raises.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from ..errors import store_unavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

# A deadlock or lock-wait timeout aborts the whole transaction in InnoDB; it is safe to
# run the interaction again from the start. Three tries cover the pile-ups we saw under
# concurrent reservations without hiding a real livelock.
MYSQL_RETRYABLE_ERRORS = {1213, 1205}
MYSQL_MAX_ATTEMPTS = 3

# Ten connections per process (--mysql-pool-size): the event loop is single-threaded, so
# more connections only help while earlier ones wait on disk; ten keeps MariaDB's default
# max_connections (151) safe for a dozen processes, workers included (--workers N on M
# machines holds up to N * M * this many).
MYSQL_POOL_SIZE = 10

SCHEMA_DIR = Path(__file__).resolve().parent

# Another process holding the SQLite file's write lock (a backup, a sqlite3 shell) is
# waited for this long before the request is answered 503 store_unavailable.
SQLITE_BUSY_TIMEOUT_MS = 5000


class Transaction(Protocol):
    async def execute(self, sql: str, *args: Any) -> int:
        """Run a statement; return the number of rows it changed."""

    async def insert(self, sql: str, *args: Any) -> int:
        """Run an INSERT; return the new row's auto-increment id."""

    async def fetchall(self, sql: str, *args: Any) -> list[dict[str, Any]]: ...

    async def fetchone(self, sql: str, *args: Any) -> dict[str, Any] | None: ...

    async def executemany(self, sql: str, rows: list[tuple]) -> int: ...


class Engine(Protocol):
    name: str
    insert_ignore: str  # "INSERT IGNORE" / "INSERT OR IGNORE"

    async def run(self, fn: Callable[[Transaction], Awaitable[T]]) -> T: ...

    async def close(self) -> None: ...


def split_statements(script: str) -> list[str]:
    """Split a schema file into statements (our schema files hold no ';' in literals)."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def db_time(value: datetime) -> str:
    """A UTC datetime as the text both engines store and compare in order."""
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


# ---------------------------------------------------------------------------- MySQL


class _MysqlTransaction:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    @staticmethod
    def _sql(sql: str) -> str:
        return sql.replace("%", "%%").replace("?", "%s")

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._cursor.execute(self._sql(sql), args)

    async def insert(self, sql: str, *args: Any) -> int:
        await self._cursor.execute(self._sql(sql), args)
        return int(self._cursor.lastrowid)

    async def executemany(self, sql: str, rows: list[tuple]) -> int:
        return await self._cursor.executemany(self._sql(sql), rows)

    async def fetchall(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        await self._cursor.execute(self._sql(sql), args)
        return list(await self._cursor.fetchall())

    async def fetchone(self, sql: str, *args: Any) -> dict[str, Any] | None:
        await self._cursor.execute(self._sql(sql), args)
        return await self._cursor.fetchone()


class MysqlEngine:
    name = "mysql"
    insert_ignore = "INSERT IGNORE"

    def __init__(self, pool: Any) -> None:
        self._pool = pool

    @classmethod
    async def open(cls, url: str, pool_size: int = MYSQL_POOL_SIZE) -> "MysqlEngine":
        import aiomysql
        import pymysql
        from pymysql.constants import CLIENT

        # CREATE ... IF NOT EXISTS and INSERT IGNORE warn by design; those are not news.
        warnings.filterwarnings("ignore", category=pymysql.err.Warning)

        params = parse_mysql_url(url)
        # FOUND_ROWS: an UPDATE reports the rows it matched, not only those it changed,
        # as SQLite does; the store reads "0 rows" as "the condition did not hold".
        params["client_flag"] = CLIENT.FOUND_ROWS
        database = params.pop("db")
        # Create the database on first start so that a newcomer needs no manual step.
        conn = await aiomysql.connect(**params, charset="utf8mb4", autocommit=True)
        try:
            async with conn.cursor() as cur:
                await cur.execute(
                    f"CREATE DATABASE IF NOT EXISTS `{database}` "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
        finally:
            conn.close()
        pool = await aiomysql.create_pool(
            **params,
            db=database,
            charset="utf8mb4",
            autocommit=False,
            minsize=1,
            maxsize=pool_size,
            pool_recycle=3600,
            # READ COMMITTED: no gap locks, so concurrent inserts into the same session's
            # rows do not deadlock each other; every invariant we keep is row-level.
            init_command="SET SESSION tx_isolation = 'READ-COMMITTED', "
            "sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'",
        )
        engine = cls(pool)
        await engine.create_schema()
        return engine

    async def create_schema(self) -> None:
        script = (SCHEMA_DIR / "schema_mysql.sql").read_text(encoding="utf-8")
        async with self._pool.acquire() as conn:
            async with conn.cursor() as cur:
                for statement in split_statements(script):
                    await cur.execute(statement)
            await conn.commit()

    async def run(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        import pymysql

        try:
            return await self._run(fn)
        except (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError) as exc:
            # Cannot connect, connection lost, or still deadlocked after the retries: the
            # transaction was rolled back (or never began).
            log.warning("MySQL unavailable: %s", exc)
            raise store_unavailable() from exc

    async def _run(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        import aiomysql
        import pymysql

        for attempt in range(1, MYSQL_MAX_ATTEMPTS + 1):
            async with self._pool.acquire() as conn:
                try:
                    async with conn.cursor(aiomysql.DictCursor) as cur:
                        result = await fn(_MysqlTransaction(cur))
                    await conn.commit()
                    return result
                except pymysql.err.OperationalError as exc:
                    await _rollback_quietly(conn)
                    if exc.args and exc.args[0] in MYSQL_RETRYABLE_ERRORS and attempt < MYSQL_MAX_ATTEMPTS:
                        log.info("retrying transaction after MySQL error %s", exc.args[0])
                        continue
                    raise
                except BaseException:
                    await _rollback_quietly(conn)
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self._pool.close()
        await self._pool.wait_closed()


async def _rollback_quietly(conn: Any) -> None:
    try:
        await conn.rollback()
    except Exception:  # the connection may already be gone; the pool discards it
        conn.close()


def parse_mysql_url(url: str) -> dict[str, Any]:
    parsed = urlparse(url)
    if parsed.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"not a mysql:// URL: {url!r}")
    database = parsed.path.lstrip("/") or "ask2live"
    if not database.replace("_", "").isalnum():
        raise ValueError(f"database name must be letters, digits and '_': {database!r}")
    return {
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 3306,
        "user": unquote(parsed.username or "root"),
        "password": unquote(parsed.password or ""),
        "db": database,
    }


# ---------------------------------------------------------------------------- SQLite


class _SqliteTransaction:
    """Runs each statement on the engine's one worker thread."""

    def __init__(self, engine: "SqliteEngine") -> None:
        self._engine = engine

    async def execute(self, sql: str, *args: Any) -> int:
        return await self._engine._call(lambda c: c.execute(sql, args).rowcount)

    async def insert(self, sql: str, *args: Any) -> int:
        return await self._engine._call(lambda c: c.execute(sql, args).lastrowid)

    async def executemany(self, sql: str, rows: list[tuple]) -> int:
        return await self._engine._call(lambda c: c.executemany(sql, rows).rowcount)

    async def fetchall(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return await self._engine._call(lambda c: [dict(r) for r in c.execute(sql, args).fetchall()])

    async def fetchone(self, sql: str, *args: Any) -> dict[str, Any] | None:
        def one(c: sqlite3.Connection) -> dict[str, Any] | None:
            row = c.execute(sql, args).fetchone()
            return dict(row) if row is not None else None

        return await self._engine._call(one)


class SqliteEngine:
    """The embedded default: one SQLite file, one connection, one thread.

    Transactions are serialised by an asyncio lock (SQLite has one writer anyway), which
    is also what makes every read-modify-write in the store race-free on this engine.
    """

    name = "sqlite"
    insert_ignore = "INSERT OR IGNORE"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._lock = asyncio.Lock()
        self._conn: sqlite3.Connection | None = None

    @classmethod
    async def open(cls, path: Path) -> "SqliteEngine":
        engine = cls(path)
        await engine._call(engine._connect)
        return engine

    def _connect(self, _: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a process crash; only an OS crash can
        # lose the last transactions. The embedded default is for one machine, so that
        # is the right trade for not fsyncing every message.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        script = (SCHEMA_DIR / "schema_sqlite.sql").read_text(encoding="utf-8")
        for statement in split_statements(script):
            conn.execute(statement)
        self._conn = conn

    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, self._conn)

    async def run(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        async with self._lock:
            try:
                await self._call(lambda c: c.execute("BEGIN IMMEDIATE"))
                result = await fn(_SqliteTransaction(self))
                await self._call(lambda c: c.execute("COMMIT"))
                return result
            except BaseException as exc:
                # Also when cancelled mid-way: the statement already handed to the thread
                # still runs there, so end whatever transaction it left open.
                await self._call(lambda c: c.execute("ROLLBACK") if c.in_transaction else None)
                if isinstance(exc, sqlite3.OperationalError):
                    # Locked past the busy timeout by another process, disk full, I/O error.
                    log.warning("SQLite unavailable: %s", exc)
                    raise store_unavailable() from exc
                raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._call(lambda c: c.close())
        self._executor.shutdown(wait=True)


async def open_engine(mysql_url: str | None, data_dir: Path, pool_size: int = MYSQL_POOL_SIZE) -> Engine:
    if mysql_url:
        return await MysqlEngine.open(mysql_url, pool_size)
    return await SqliteEngine.open(data_dir / "ask2live.sqlite3")

