-- SQLite twin of schema.sql (the source of truth); same tables, columns and keys.
-- DATETIME columns hold 'YYYY-MM-DD HH:MM:SS.fff' UTC text.

CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL COLLATE NOCASE,
    display_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at DATETIME NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS users_username ON users (username);

CREATE TABLE IF NOT EXISTS auth_tokens (
    token_hash TEXT NOT NULL PRIMARY KEY,
    user_id INTEGER NOT NULL,
    created_at DATETIME NOT NULL,
    expires_at DATETIME NOT NULL,
    revoked_at DATETIME NULL
);
CREATE INDEX IF NOT EXISTS auth_tokens_user ON auth_tokens (user_id);

CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    host_id INTEGER NOT NULL,
    title TEXT NOT NULL,
    description TEXT NOT NULL,
    tags TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at DATETIME NOT NULL,
    started_at DATETIME NULL,
    ended_at DATETIME NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    reservation_count INTEGER NOT NULL DEFAULT 0,
    reservation_target INTEGER NULL,
    confirmed_at DATETIME NULL,
    pinned_question_id INTEGER NULL
);
CREATE INDEX IF NOT EXISTS sessions_status_starts ON sessions (status, starts_at);
CREATE INDEX IF NOT EXISTS sessions_host ON sessions (host_id);

CREATE TABLE IF NOT EXISTS reservations (
    session_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (session_id, user_id)
);

CREATE TABLE IF NOT EXISTS questions (
    id INTEGER NOT NULL PRIMARY KEY,
    session_id INTEGER NOT NULL,
    author_id INTEGER NOT NULL,
    text TEXT NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0,
    votes INTEGER NOT NULL DEFAULT 0,
    hidden INTEGER NOT NULL DEFAULT 0,
    answered_at DATETIME NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL
);
CREATE INDEX IF NOT EXISTS questions_session ON questions (session_id, votes);

CREATE TABLE IF NOT EXISTS question_votes (
    question_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (question_id, user_id)
);

CREATE TABLE IF NOT EXISTS id_sequences (
    name TEXT NOT NULL PRIMARY KEY,
    next_id INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS room_events (
    session_id INTEGER NOT NULL,
    id_ms INTEGER NOT NULL,
    id_seq INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (session_id, id_ms, id_seq)
);

CREATE TABLE IF NOT EXISTS room_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id INTEGER NOT NULL,
    type TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at DATETIME NOT NULL,
    claimed_by TEXT NULL,
    claimed_at DATETIME NULL
);

CREATE TABLE IF NOT EXISTS room_tickets (
    digest TEXT NOT NULL PRIMARY KEY,
    token_digest TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    session_id INTEGER NOT NULL,
    expires_at DATETIME NOT NULL
);

CREATE INDEX IF NOT EXISTS room_tickets_expiry ON room_tickets (expires_at);
