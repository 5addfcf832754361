"""The cold store: every query the server makes, written once for both engines.

Each public method runs one named interaction (one transaction). The name labels the
log line and the metric for that transaction, as Synapse's ``runInteraction`` does.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import datetime
from typing import Any, Awaitable, Callable, TypeVar

import orjson

from ..events import STAGE_EVENTS, Event
from ..models import Question, Session, User
from ..timeutil import from_db
from .engines import Engine, Transaction, db_time

log = logging.getLogger(__name__)

T = TypeVar("T")

SESSION_COLUMNS = """
    s.id, s.host_id, s.title, s.description, s.tags, s.status, s.starts_at, s.started_at,
    s.ended_at, s.created_at, s.reservation_count, s.reservation_target, s.confirmed_at,
    s.pinned_question_id, u.username AS host_username, u.display_name AS host_display_name
"""

QUESTION_COLUMNS = """
    q.id, q.session_id, q.author_id, q.text, q.anonymous, q.votes, q.hidden, q.answered_at,
    q.created_at, q.updated_at, u.username AS author_username,
    u.display_name AS author_display_name, s.pinned_question_id
"""

# The detail's counts (visible questions and their votes) and whether the viewer (the
# one ? parameter) has reserved a seat.
SESSION_COUNTS = """
    (SELECT COUNT(*) FROM questions q WHERE q.session_id = s.id AND q.hidden = 0) AS question_count,
    (SELECT COALESCE(SUM(q.votes), 0) FROM questions q WHERE q.session_id = s.id AND q.hidden = 0) AS vote_count,
    (SELECT COUNT(*) FROM reservations r WHERE r.session_id = s.id AND r.user_id = ?) AS reserved
"""

# One ticket issue in this many also deletes the expired tickets.
TICKET_SWEEP_ONE_IN = 50

# What update_session may set; the column names are written into its SQL.
EDITABLE_SESSION_COLUMNS = frozenset({"title", "description", "tags", "starts_at", "reservation_target"})

# Scheduled sessions soonest first, live ones most recently started first, ended ones
# most recently ended first; with no status filter, live before scheduled before ended.
SESSION_ORDER = """
    ORDER BY CASE s.status WHEN 'live' THEN 0 WHEN 'scheduled' THEN 1
                           WHEN 'ended' THEN 2 ELSE 3 END,
             CASE WHEN s.status = 'scheduled' THEN s.starts_at END ASC,
             COALESCE(s.ended_at, s.started_at, s.starts_at) DESC,
             s.id DESC
"""

# The cue sheet: the pinned question on top, then open questions by votes (ties: the
# oldest first, it has waited longest), answered ones last in the same order.
QUESTION_ORDER = {
    "top": """ORDER BY CASE WHEN q.id = s.pinned_question_id THEN 0 ELSE 1 END,
                       CASE WHEN q.answered_at IS NULL THEN 0 ELSE 1 END,
                       q.votes DESC, q.created_at ASC, q.id ASC""",
    "recent": "ORDER BY q.created_at DESC, q.id DESC",
}


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with its wildcards escaped by '!'."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


def _session(row: dict[str, Any]) -> Session:
    return Session(
        id=int(row["id"]),
        host=User(int(row["host_id"]), row["host_username"], row["host_display_name"]),
        title=row["title"],
        description=row["description"],
        tags=orjson.loads(row["tags"]),
        status=row["status"],
        starts_at=from_db(row["starts_at"]),
        started_at=from_db(row["started_at"]),
        ended_at=from_db(row["ended_at"]),
        created_at=from_db(row["created_at"]),
        reservation_count=int(row["reservation_count"]),
        reservation_target=row["reservation_target"],
        confirmed_at=from_db(row["confirmed_at"]),
        pinned_question_id=row["pinned_question_id"],
        question_count=int(row.get("question_count") or 0),
        vote_count=int(row.get("vote_count") or 0),
        reserved=bool(row.get("reserved")),
    )


def _question(row: dict[str, Any]) -> Question:
    return Question(
        id=int(row["id"]),
        session_id=int(row["session_id"]),
        author=User(int(row["author_id"]), row["author_username"], row["author_display_name"]),
        text=row["text"],
        anonymous=bool(row["anonymous"]),
        votes=int(row["votes"]),
        hidden=bool(row["hidden"]),
        answered_at=from_db(row["answered_at"]),
        created_at=from_db(row["created_at"]),
        updated_at=from_db(row["updated_at"]),
        pinned=row["pinned_question_id"] is not None and int(row["pinned_question_id"]) == int(row["id"]),
        voted=bool(row.get("voted")),
    )


class Store:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._observers: list[Callable[[str, float], None]] = []

    def observe_interactions(self, observer: Callable[[str, float], None]) -> None:
        """Call ``observer(name, seconds)`` after each interaction (for metrics)."""
        self._observers.append(observer)

    async def interaction(self, name: str, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        start = time.perf_counter()
        try:
            return await self.engine.run(fn)
        finally:
            elapsed = time.perf_counter() - start
            for observer in self._observers:
                observer(name, elapsed)

    async def close(self) -> None:
        await self.engine.close()

    async def ping(self) -> None:
        async def fn(txn: Transaction) -> None:
            await txn.fetchone("SELECT 1 AS ok")

        await self.interaction("ping", fn)

    # ------------------------------------------------------------------ accounts

    async def create_user(self, username: str, display_name: str, password_hash: str, now: datetime) -> User | None:
        """The new user, or None if the username is taken."""

        async def fn(txn: Transaction) -> User | None:
            inserted = await txn.execute(
                f"{self.engine.insert_ignore} INTO users (username, display_name, password_hash, created_at)"
                " VALUES (?, ?, ?, ?)",
                username, display_name, password_hash, db_time(now),
            )
            if not inserted:
                return None
            row = await txn.fetchone("SELECT id FROM users WHERE username = ?", username)
            return User(int(row["id"]), username, display_name)

        return await self.interaction("create_user", fn)

    async def get_login(self, username: str) -> tuple[User, str] | None:
        async def fn(txn: Transaction) -> tuple[User, str] | None:
            row = await txn.fetchone(
                "SELECT id, username, display_name, password_hash FROM users WHERE username = ?", username
            )
            if row is None:
                return None
            return User(int(row["id"]), row["username"], row["display_name"]), row["password_hash"]

        return await self.interaction("get_login", fn)

    async def get_user(self, user_id: int) -> User | None:
        async def fn(txn: Transaction) -> User | None:
            row = await txn.fetchone("SELECT id, username, display_name FROM users WHERE id = ?", user_id)
            return User(int(row["id"]), row["username"], row["display_name"]) if row else None

        return await self.interaction("get_user", fn)

    async def create_token(self, token_hash: str, user_id: int, now: datetime, expires_at: datetime) -> None:
        async def fn(txn: Transaction) -> None:
            await txn.execute(
                "INSERT INTO auth_tokens (token_hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                token_hash, user_id, db_time(now), db_time(expires_at),
            )

        await self.interaction("create_token", fn)

    async def get_token_user(self, token_hash: str, now: datetime) -> User | None:
        async def fn(txn: Transaction) -> User | None:
            row = await txn.fetchone(
                "SELECT u.id, u.username, u.display_name FROM auth_tokens t JOIN users u ON u.id = t.user_id"
                " WHERE t.token_hash = ? AND t.revoked_at IS NULL AND t.expires_at > ?",
                token_hash, db_time(now),
            )
            return User(int(row["id"]), row["username"], row["display_name"]) if row else None

        return await self.interaction("get_token_user", fn)

    async def create_ticket(self, digest: str, token_hash: str, user_id: int, session_id: int,
                            now: datetime, expires_at: datetime) -> None:
        async def fn(txn: Transaction) -> None:
            # Tickets live seconds: the expired ones go now and then, as new ones are made (not
            # every time: a join storm's thousands of issues would queue on the same rows).
            if secrets.randbelow(TICKET_SWEEP_ONE_IN) == 0:
                await txn.execute("DELETE FROM room_tickets WHERE expires_at <= ?", db_time(now))
            await txn.execute(
                "INSERT INTO room_tickets (digest, token_digest, user_id, session_id, expires_at) VALUES (?, ?, ?, ?, ?)",
                digest, token_hash, user_id, session_id, db_time(expires_at))

        await self.interaction("create_ticket", fn)

    async def take_ticket(self, digest: str, session_id: int, now: datetime) -> tuple[User, str] | None:
        """Use a ticket up: (its user, the digest of the token it was issued to) if it is
        unexpired, for this session, and that token is still valid; gone either way."""

        async def fn(txn: Transaction) -> tuple[User, str] | None:
            row = await txn.fetchone(
                "SELECT u.id, u.username, u.display_name, k.token_digest, k.session_id FROM room_tickets k"
                " JOIN auth_tokens t ON t.token_hash = k.token_digest JOIN users u ON u.id = k.user_id"
                " WHERE k.digest = ? AND k.expires_at > ? AND t.revoked_at IS NULL AND t.expires_at > ?",
                digest, db_time(now), db_time(now))
            if not await txn.execute("DELETE FROM room_tickets WHERE digest = ?", digest) or row is None:
                return None
            if int(row["session_id"]) != session_id:
                return None
            return User(int(row["id"]), row["username"], row["display_name"]), row["token_digest"]

        return await self.interaction("take_ticket", fn)

    async def revoke_token(self, token_hash: str, now: datetime) -> bool:
        async def fn(txn: Transaction) -> bool:
            changed = await txn.execute(
                "UPDATE auth_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
                db_time(now), token_hash,
            )
            return changed > 0

        return await self.interaction("revoke_token", fn)

    # ------------------------------------------------------------------ sessions

    async def create_session(
        self, host_id: int, title: str, description: str, tags: list[str],
        starts_at: datetime, target: int | None, now: datetime,
    ) -> int:
        async def fn(txn: Transaction) -> int:
            return await txn.insert(
                "INSERT INTO sessions (host_id, title, description, tags, status, starts_at, created_at,"
                " updated_at, reservation_target) VALUES (?, ?, ?, ?, 'scheduled', ?, ?, ?, ?)",
                host_id, title, description, orjson.dumps(tags).decode(), db_time(starts_at),
                db_time(now), db_time(now), target,
            )

        return await self.interaction("create_session", fn)

    async def get_session(self, session_id: int, viewer_id: int | None = None) -> Session | None:
        async def fn(txn: Transaction) -> Session | None:
            row = await txn.fetchone(
                f"SELECT {SESSION_COLUMNS}, {SESSION_COUNTS}"
                " FROM sessions s JOIN users u ON u.id = s.host_id WHERE s.id = ?",
                viewer_id or 0, session_id,
            )
            return _session(row) if row else None

        return await self.interaction("get_session", fn)

    async def list_sessions(
        self, *, status: str | None, host_id: int | None, query: str | None,
        limit: int, offset: int, viewer_id: int | None,
    ) -> list[Session]:
        clauses, args = [], []
        if status:
            clauses.append("s.status = ?")
            args.append(status)
        else:
            clauses.append("s.status <> 'cancelled'")
        if host_id is not None:
            clauses.append("s.host_id = ?")
            args.append(host_id)
        if query:
            clauses.append("s.title LIKE ? ESCAPE '!'")
            args.append(like_pattern(query))

        async def fn(txn: Transaction) -> list[Session]:
            rows = await txn.fetchall(
                f"SELECT {SESSION_COLUMNS}, {SESSION_COUNTS}"
                f" FROM sessions s JOIN users u ON u.id = s.host_id WHERE {' AND '.join(clauses)}"
                f" {SESSION_ORDER} LIMIT ? OFFSET ?",
                viewer_id or 0, *args, limit, offset,
            )
            return [_session(r) for r in rows]

        return await self.interaction("list_sessions", fn)

    async def update_session(self, session_id: int, fields: dict[str, Any], now: datetime) -> bool:
        """Change a scheduled session's editable fields; False if it is no longer scheduled."""
        unknown = set(fields) - EDITABLE_SESSION_COLUMNS
        if unknown:
            # The names go into the SQL text: never anything but these columns (a check that
            # `python -O` keeps, unlike an assert).
            raise ValueError(f"not editable session columns: {sorted(unknown)}")
        values = []
        for name, value in fields.items():
            if name == "tags":
                value = orjson.dumps(value).decode()
            elif name == "starts_at":
                value = db_time(value)
            values.append(value)
        assignments = ", ".join(f"{name} = ?" for name in fields)
        # Moving the start time withdraws an earlier confirmation of it.
        if "starts_at" in fields:
            assignments += ", confirmed_at = NULL"

        async def fn(txn: Transaction) -> bool:
            changed = await txn.execute(
                f"UPDATE sessions SET {assignments}, updated_at = ? WHERE id = ? AND status = 'scheduled'",
                *values, db_time(now), session_id,
            )
            return changed > 0

        return await self.interaction("update_session", fn)

    async def transition_session(self, session_id: int, from_status: str, to_status: str, now: datetime) -> bool:
        """Move a session from one state to the next; False if it was not in ``from_status``."""
        stamp = {"live": ", started_at = ?", "ended": ", ended_at = ?"}.get(to_status, "")
        stamp_args = [db_time(now)] if stamp else []

        async def fn(txn: Transaction) -> bool:
            changed = await txn.execute(
                f"UPDATE sessions SET status = ?, updated_at = ?{stamp} WHERE id = ? AND status = ?",
                to_status, db_time(now), *stamp_args, session_id, from_status,
            )
            return changed > 0

        return await self.interaction(f"session_{to_status}", fn)

    async def confirm_session(self, session_id: int, starts_at: datetime | None, now: datetime) -> bool:
        async def fn(txn: Transaction) -> bool:
            if starts_at is None:
                changed = await txn.execute(
                    "UPDATE sessions SET confirmed_at = ?, updated_at = ? WHERE id = ? AND status = 'scheduled'",
                    db_time(now), db_time(now), session_id,
                )
            else:
                changed = await txn.execute(
                    "UPDATE sessions SET confirmed_at = ?, starts_at = ?, updated_at = ?"
                    " WHERE id = ? AND status = 'scheduled'",
                    db_time(now), db_time(starts_at), db_time(now), session_id,
                )
            return changed > 0

        return await self.interaction("confirm_session", fn)

    # ------------------------------------------------------------------ reservations

    async def reserve(self, session_id: int, user_id: int, now: datetime) -> bool:
        """Reserve a seat; False if this user already holds one. The count moves in the same
        transaction as the unique row, so concurrent reservations never lose or double it."""

        async def fn(txn: Transaction) -> bool:
            inserted = await txn.execute(
                f"{self.engine.insert_ignore} INTO reservations (session_id, user_id, created_at) VALUES (?, ?, ?)",
                session_id, user_id, db_time(now),
            )
            if inserted:
                await txn.execute(
                    "UPDATE sessions SET reservation_count = reservation_count + 1 WHERE id = ?", session_id
                )
            return inserted > 0

        return await self.interaction("reserve", fn)

    async def unreserve(self, session_id: int, user_id: int) -> bool:
        async def fn(txn: Transaction) -> bool:
            deleted = await txn.execute(
                "DELETE FROM reservations WHERE session_id = ? AND user_id = ?", session_id, user_id
            )
            if deleted:
                await txn.execute(
                    "UPDATE sessions SET reservation_count = reservation_count - 1 WHERE id = ?", session_id
                )
            return deleted > 0

        return await self.interaction("unreserve", fn)

    async def list_reservations(self, session_id: int) -> list[tuple[User, datetime]]:
        async def fn(txn: Transaction) -> list[tuple[User, datetime]]:
            rows = await txn.fetchall(
                "SELECT u.id, u.username, u.display_name, r.created_at FROM reservations r"
                " JOIN users u ON u.id = r.user_id WHERE r.session_id = ? ORDER BY r.created_at, u.id",
                session_id,
            )
            return [(User(int(r["id"]), r["username"], r["display_name"]), from_db(r["created_at"])) for r in rows]

        return await self.interaction("list_reservations", fn)

    # ------------------------------------------------------------------ ids

    async def allocate_ids(self, sequence: str, count: int) -> int:
        """Reserve ``count`` consecutive ids of ``sequence``; return the first."""

        async def fn(txn: Transaction) -> int:
            await txn.execute(
                f"{self.engine.insert_ignore} INTO id_sequences (name, next_id) VALUES (?, 1)", sequence
            )
            await txn.execute("UPDATE id_sequences SET next_id = next_id + ? WHERE name = ?", count, sequence)
            row = await txn.fetchone("SELECT next_id FROM id_sequences WHERE name = ?", sequence)
            return int(row["next_id"]) - count

        return await self.interaction("allocate_ids", fn)

    # ------------------------------------------------------------------ questions

    async def create_question(
        self, question_id: int, session_id: int, author_id: int, text: str, anonymous: bool, now: datetime
    ) -> None:
        async def fn(txn: Transaction) -> None:
            await txn.execute(
                "INSERT INTO questions (id, session_id, author_id, text, anonymous, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                question_id, session_id, author_id, text, int(anonymous), db_time(now), db_time(now),
            )

        await self.interaction("create_question", fn)

    async def get_question(self, question_id: int, viewer_id: int | None = None) -> Question | None:
        async def fn(txn: Transaction) -> Question | None:
            row = await txn.fetchone(
                f"SELECT {QUESTION_COLUMNS},"
                " (SELECT COUNT(*) FROM question_votes v WHERE v.question_id = q.id AND v.user_id = ?) AS voted"
                " FROM questions q JOIN users u ON u.id = q.author_id JOIN sessions s ON s.id = q.session_id"
                " WHERE q.id = ?",
                viewer_id or 0, question_id,
            )
            return _question(row) if row else None

        return await self.interaction("get_question", fn)

    async def list_questions(
        self, session_id: int, *, sort: str, include_hidden: bool, viewer_id: int | None,
        limit: int, offset: int,
    ) -> list[Question]:
        hidden_clause = "" if include_hidden else " AND q.hidden = 0"

        async def fn(txn: Transaction) -> list[Question]:
            rows = await txn.fetchall(
                f"SELECT {QUESTION_COLUMNS},"
                " (SELECT COUNT(*) FROM question_votes v WHERE v.question_id = q.id AND v.user_id = ?) AS voted"
                " FROM questions q JOIN users u ON u.id = q.author_id JOIN sessions s ON s.id = q.session_id"
                f" WHERE q.session_id = ?{hidden_clause} {QUESTION_ORDER[sort]} LIMIT ? OFFSET ?",
                viewer_id or 0, session_id, limit, offset,
            )
            return [_question(r) for r in rows]

        return await self.interaction("list_questions", fn)

    async def edit_question(self, question_id: int, text: str, now: datetime) -> bool:
        """Change the text of an unanswered question; False if it was answered meanwhile."""

        async def fn(txn: Transaction) -> bool:
            changed = await txn.execute(
                "UPDATE questions SET text = ?, updated_at = ? WHERE id = ? AND answered_at IS NULL",
                text, db_time(now), question_id,
            )
            return changed > 0

        return await self.interaction("edit_question", fn)

    async def delete_question(self, question_id: int) -> bool:
        async def fn(txn: Transaction) -> bool:
            deleted = await txn.execute("DELETE FROM questions WHERE id = ? AND answered_at IS NULL", question_id)
            if deleted:
                await txn.execute("DELETE FROM question_votes WHERE question_id = ?", question_id)
                await txn.execute(
                    "UPDATE sessions SET pinned_question_id = NULL WHERE pinned_question_id = ?", question_id
                )
            return deleted > 0

        return await self.interaction("delete_question", fn)

    async def vote(self, question_id: int, user_id: int, now: datetime) -> int | None:
        """Add a vote; the new count, or None if this user had already voted, or 0 (and
        nothing written) if the question no longer exists."""

        async def fn(txn: Transaction) -> int | None:
            # Lock the question row first, as delete_question does: a vote racing a delete
            # must not leave a vote row behind for a question that is gone.
            if not await txn.execute("UPDATE questions SET votes = votes WHERE id = ?", question_id):
                return 0
            inserted = await txn.execute(
                f"{self.engine.insert_ignore} INTO question_votes (question_id, user_id, created_at) VALUES (?, ?, ?)",
                question_id, user_id, db_time(now),
            )
            if not inserted:
                return None
            await txn.execute("UPDATE questions SET votes = votes + 1 WHERE id = ?", question_id)
            row = await txn.fetchone("SELECT votes FROM questions WHERE id = ?", question_id)
            return int(row["votes"])

        return await self.interaction("vote", fn)

    async def unvote(self, question_id: int, user_id: int) -> int | None:
        """Take a vote back; the new count, or None if this user had not voted."""

        async def fn(txn: Transaction) -> int | None:
            deleted = await txn.execute(
                "DELETE FROM question_votes WHERE question_id = ? AND user_id = ?", question_id, user_id
            )
            if not deleted:
                return None
            await txn.execute("UPDATE questions SET votes = votes - 1 WHERE id = ?", question_id)
            row = await txn.fetchone("SELECT votes FROM questions WHERE id = ?", question_id)
            return int(row["votes"])

        return await self.interaction("unvote", fn)

    async def set_answered(self, question_id: int, answered: bool, now: datetime) -> None:
        async def fn(txn: Transaction) -> None:
            if answered:
                await txn.execute(
                    "UPDATE questions SET answered_at = COALESCE(answered_at, ?), updated_at = ? WHERE id = ?",
                    db_time(now), db_time(now), question_id,
                )
                # A question that is answered is no longer "now answering".
                await txn.execute(
                    "UPDATE sessions SET pinned_question_id = NULL WHERE pinned_question_id = ?", question_id
                )
            else:
                await txn.execute(
                    "UPDATE questions SET answered_at = NULL, updated_at = ? WHERE id = ?", db_time(now), question_id
                )

        await self.interaction("set_answered", fn)

    async def set_pinned(self, session_id: int, question_id: int, pinned: bool) -> bool:
        """Pin a question as "now answering". The pin lives on the session row, so at most
        one question per session is pinned however many hosts' clicks race. False if the
        question is no longer pinnable (gone, hidden or answered)."""

        async def fn(txn: Transaction) -> bool:
            if pinned:
                # Lock the question row first, as set_hidden, set_answered and delete_question
                # do, and re-check it there: a hide, answer or delete racing the pin then
                # either runs after it (and unpins) or makes it fail, never leaves it pinned.
                pinnable = await txn.execute(
                    "UPDATE questions SET hidden = hidden WHERE id = ? AND session_id = ? AND hidden = 0"
                    " AND answered_at IS NULL",
                    question_id, session_id,
                )
                if not pinnable:
                    return False
                await txn.execute("UPDATE sessions SET pinned_question_id = ? WHERE id = ?", question_id, session_id)
            else:
                await txn.execute(
                    "UPDATE sessions SET pinned_question_id = NULL WHERE id = ? AND pinned_question_id = ?",
                    session_id, question_id,
                )
            return True

        return await self.interaction("set_pinned", fn)

    async def set_hidden(self, question_id: int, hidden: bool, now: datetime) -> None:
        async def fn(txn: Transaction) -> None:
            await txn.execute(
                "UPDATE questions SET hidden = ?, updated_at = ? WHERE id = ?", int(hidden), db_time(now), question_id
            )
            if hidden:
                await txn.execute(
                    "UPDATE sessions SET pinned_question_id = NULL WHERE pinned_question_id = ?", question_id
                )

        await self.interaction("set_hidden", fn)

    # ------------------------------------------------------------------ room events

    async def insert_events(self, events: list[Event], now: datetime) -> int:
        """One multi-row INSERT for a whole batch; ids already stored are skipped, so a
        retried batch never duplicates. Returns how many rows were new."""
        if not events:
            return 0
        rows = []
        for event in events:
            ms, seq = event.key
            rows.append((event.session_id, ms, seq, event.type, event.body.decode(), db_time(now)))
        placeholders = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(rows))
        args = [value for row in rows for value in row]

        async def fn(txn: Transaction) -> int:
            return await txn.execute(
                f"{self.engine.insert_ignore} INTO room_events (session_id, id_ms, id_seq, type, body, created_at)"
                f" VALUES {placeholders}",
                *args,
            )

        return await self.interaction("insert_events", fn)

    async def events_after(self, session_id: int, since: tuple[int, int], limit: int,
                           before: tuple[int, int] | None = None) -> list[Event]:
        """Catch-up: events after ``since`` (and before ``before``), oldest first."""
        upper = " AND (id_ms, id_seq) < (?, ?)" if before else ""

        async def fn(txn: Transaction) -> list[dict]:
            return await txn.fetchall(
                "SELECT session_id, id_ms, id_seq, type, body FROM room_events"
                f" WHERE session_id = ? AND (id_ms, id_seq) > (?, ?){upper}"
                " ORDER BY id_ms, id_seq LIMIT ?",
                session_id, *since, *(before or ()), limit,
            )

        return [_event(r) for r in await self.interaction("events_after", fn)]

    async def recent_events(self, session_id: int, limit: int) -> list[Event]:
        """The room's last ``limit`` events, oldest first (history when the log lost them)."""

        async def fn(txn: Transaction) -> list[dict]:
            return await txn.fetchall(
                "SELECT session_id, id_ms, id_seq, type, body FROM room_events WHERE session_id = ?"
                " ORDER BY id_ms DESC, id_seq DESC LIMIT ?",
                session_id, limit,
            )

        return [_event(r) for r in reversed(await self.interaction("recent_events", fn))]

    # -- the room outbox: announcements the room log could not take when they were made

    async def outbox_add(self, session_id: int, event_type: str, body: bytes, now: datetime) -> None:
        async def fn(txn: Transaction) -> None:
            await txn.insert("INSERT INTO room_outbox (session_id, type, body, created_at) VALUES (?, ?, ?, ?)",
                             session_id, event_type, body.decode(), db_time(now))

        await self.interaction("outbox_add", fn)

    async def outbox_claim(self, owner: str, limit: int, now: datetime, stale_before: datetime) -> list[dict]:
        """Claim up to ``limit`` waiting announcements for ``owner`` (those nobody holds, its
        own, or those whose holder has not finished by ``stale_before``), oldest first."""

        async def fn(txn: Transaction) -> list[dict]:
            rows = await txn.fetchall(
                "SELECT id FROM room_outbox WHERE claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?"
                " ORDER BY id LIMIT ?", owner, db_time(stale_before), limit)
            claimed = []
            for row in rows:
                if await txn.execute(
                        "UPDATE room_outbox SET claimed_by = ?, claimed_at = ? WHERE id = ?"
                        " AND (claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?)",
                        owner, db_time(now), row["id"], owner, db_time(stale_before)):
                    claimed.append(row["id"])
            if not claimed:
                return []
            return await txn.fetchall(
                f"SELECT id, session_id, type, body FROM room_outbox WHERE id IN ({', '.join('?' for _ in claimed)})"
                " ORDER BY id", *claimed)

        return await self.interaction("outbox_claim", fn)

    async def outbox_delete(self, outbox_id: int) -> None:
        async def fn(txn: Transaction) -> None:
            await txn.execute("DELETE FROM room_outbox WHERE id = ?", outbox_id)

        await self.interaction("outbox_delete", fn)

    async def outbox_count(self) -> int:
        async def fn(txn: Transaction) -> int:
            row = await txn.fetchone("SELECT COUNT(*) AS n FROM room_outbox")
            return int(row["n"])

        return await self.interaction("outbox_count", fn)

    async def stage_events(self, session_id: int) -> list[Event]:
        """Every event that changed the room's stage (voice, hands), oldest first: few, and
        read only when a room log rebuilds a room it lost."""

        async def fn(txn: Transaction) -> list[dict]:
            return await txn.fetchall(
                "SELECT session_id, id_ms, id_seq, type, body FROM room_events WHERE session_id = ?"
                f" AND type IN ({', '.join('?' for _ in STAGE_EVENTS)}) ORDER BY id_ms, id_seq",
                session_id, *STAGE_EVENTS,
            )

        return [_event(r) for r in await self.interaction("stage_events", fn)]

    async def stored_event_ids(self, session_id: int, first: tuple[int, int], last: tuple[int, int]) -> set[tuple[int, int]]:
        """Which ids between ``first`` and ``last`` (inclusive) the cold store holds."""

        async def fn(txn: Transaction) -> list[dict]:
            return await txn.fetchall(
                "SELECT id_ms, id_seq FROM room_events WHERE session_id = ?"
                " AND (id_ms, id_seq) >= (?, ?) AND (id_ms, id_seq) <= (?, ?)",
                session_id, *first, *last,
            )

        return {(int(r["id_ms"]), int(r["id_seq"])) for r in await self.interaction("stored_event_ids", fn)}

    async def count_events(self, session_id: int) -> int:
        async def fn(txn: Transaction) -> int:
            row = await txn.fetchone("SELECT COUNT(*) AS n FROM room_events WHERE session_id = ?", session_id)
            return int(row["n"])

        return await self.interaction("count_events", fn)


def _event(row: dict[str, Any]) -> Event:
    body = row["body"]
    return Event(f"{row['id_ms']}-{row['id_seq']}", int(row["session_id"]), row["type"],
                 body.encode() if isinstance(body, str) else bytes(body))
