-- Sessions (chats and calls), their logs and who held them, plus hashed API tokens.
-- Portable SQL: runs unchanged on SQLite and PostgreSQL. Times are milliseconds since the Unix
-- epoch; ids are UUID text; JSON is stored as text.

CREATE TABLE sessions (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    site            TEXT NOT NULL,
    channel         TEXT NOT NULL,
    state           TEXT NOT NULL,
    started_at      BIGINT NOT NULL,
    ended_at        BIGINT,
    end_reason      TEXT,
    message_count   BIGINT NOT NULL DEFAULT 0,
    last_message    TEXT,
    last_message_at BIGINT,
    country         TEXT,
    device          TEXT NOT NULL,
    holder          TEXT NOT NULL,
    sentiment       DOUBLE PRECISION
);

CREATE INDEX sessions_by_tenant_state_start ON sessions (tenant, state, started_at);

CREATE TABLE session_messages (
    session_id  TEXT NOT NULL REFERENCES sessions (id),
    seq         BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    author_role TEXT NOT NULL,
    author_name TEXT,
    text        TEXT NOT NULL,
    client_id   TEXT,
    notice      TEXT,
    PRIMARY KEY (session_id, seq)
);

CREATE TABLE session_holds (
    session_id TEXT NOT NULL REFERENCES sessions (id),
    idx        BIGINT NOT NULL,
    holder     TEXT NOT NULL,
    from_at    BIGINT NOT NULL,
    until_at   BIGINT,
    PRIMARY KEY (session_id, idx)
);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    tenant       TEXT NOT NULL,
    is_admin     BIGINT NOT NULL DEFAULT 0,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL
);
