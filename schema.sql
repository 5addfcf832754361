-- ASK2LIVE cold store, MySQL / MariaDB (InnoDB, utf8mb4): the source of truth.
-- The SQLite twin is ask2live/store/schema_sqlite.sql; tests/test_schema.py keeps them in step.
-- Every statement is idempotent: the server runs this file on each start.
-- Times are UTC. No foreign keys: integrity is kept by the store's transactions,
-- and FK locks would serialise the hot tables for nothing.

CREATE TABLE IF NOT EXISTS users (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(32) NOT NULL,
    display_name VARCHAR(64) NOT NULL,
    password_hash VARCHAR(255) NOT NULL,
    created_at DATETIME(3) NOT NULL,
    UNIQUE KEY users_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS auth_tokens (
    token_hash CHAR(64) NOT NULL PRIMARY KEY,
    user_id BIGINT NOT NULL,
    created_at DATETIME(3) NOT NULL,
    expires_at DATETIME(3) NOT NULL,
    revoked_at DATETIME(3) NULL,
    KEY auth_tokens_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS sessions (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    host_id BIGINT NOT NULL,
    title VARCHAR(200) NOT NULL,
    description TEXT NOT NULL,
    tags VARCHAR(1000) NOT NULL,
    status VARCHAR(16) NOT NULL,
    starts_at DATETIME(3) NOT NULL,
    started_at DATETIME(3) NULL,
    ended_at DATETIME(3) NULL,
    created_at DATETIME(3) NOT NULL,
    updated_at DATETIME(3) NOT NULL,
    reservation_count INT NOT NULL DEFAULT 0,
    reservation_target INT NULL,
    confirmed_at DATETIME(3) NULL,
    pinned_question_id BIGINT NULL,
    KEY sessions_status_starts (status, starts_at),
    KEY sessions_host (host_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS reservations (
    session_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at DATETIME(3) NOT NULL,
    PRIMARY KEY (session_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Question ids are handed out in blocks from id_sequences (see store/ids.py), not
-- by AUTO_INCREMENT, so that a live question gets its id without a database round trip.
CREATE TABLE IF NOT EXISTS questions (
    id BIGINT NOT NULL PRIMARY KEY,
    session_id BIGINT NOT NULL,
    author_id BIGINT NOT NULL,
    text TEXT NOT NULL,
    anonymous TINYINT NOT NULL DEFAULT 0,
    votes INT NOT NULL DEFAULT 0,
    hidden TINYINT NOT NULL DEFAULT 0,
    answered_at DATETIME(3) NULL,
    created_at DATETIME(3) NOT NULL,
    updated_at DATETIME(3) NOT NULL,
    KEY questions_session (session_id, votes)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS question_votes (
    question_id BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    created_at DATETIME(3) NOT NULL,
    PRIMARY KEY (question_id, user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS id_sequences (
    name VARCHAR(32) NOT NULL PRIMARY KEY,
    next_id BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The live room's events (chat, live questions, votes, hands, voice, join/leave, ...),
-- written behind in batches. (session_id, id_ms, id_seq) is the Redis stream id, so a
-- batch that is retried after a fault inserts nothing twice.
CREATE TABLE IF NOT EXISTS room_events (
    session_id BIGINT NOT NULL,
    id_ms BIGINT NOT NULL,
    id_seq BIGINT NOT NULL,
    type VARCHAR(32) NOT NULL,
    body MEDIUMTEXT NOT NULL,
    created_at DATETIME(3) NOT NULL,
    PRIMARY KEY (session_id, id_ms, id_seq)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Room announcements (session started or ended, a question changed over REST) made while
-- the room log could not take them: the change itself is committed, and its event waits
-- here until a server process appends it to the room (at least once: a process that dies
-- between the append and the delete leaves it to be appended again after the claim expires).
CREATE TABLE IF NOT EXISTS room_outbox (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    session_id BIGINT NOT NULL,
    type VARCHAR(32) NOT NULL,
    body MEDIUMTEXT NOT NULL,
    created_at DATETIME(3) NOT NULL,
    claimed_by VARCHAR(128) NULL,
    claimed_at DATETIME(3) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Single-use tickets to open a room's WebSocket (instead of the long-lived token in the
-- URL, where proxies log it): only an HMAC of the ticket is kept, with the token it was
-- issued to (logging that token out closes the socket), for a few seconds.
CREATE TABLE IF NOT EXISTS room_tickets (
    digest CHAR(64) NOT NULL PRIMARY KEY,
    token_digest CHAR(64) NOT NULL,
    user_id BIGINT NOT NULL,
    session_id BIGINT NOT NULL,
    expires_at DATETIME(3) NOT NULL,
    KEY room_tickets_expiry (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
