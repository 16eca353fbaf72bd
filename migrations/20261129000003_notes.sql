-- Supervisors' notes on a session (live or finished), kept with it. Portable SQL.

CREATE TABLE session_notes (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    author     TEXT NOT NULL,
    text       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE INDEX session_notes_by_session ON session_notes (session_id, created_at);
