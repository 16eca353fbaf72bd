-- What a voice session adds to its session row: where the call came from, its parties, codec,
-- hang-up cause, and per speaker its media figures and recording. Portable SQL (SQLite and
-- PostgreSQL); parties and streams are JSON text.

CREATE TABLE calls (
    session_id   TEXT PRIMARY KEY REFERENCES sessions (id),
    source       TEXT NOT NULL,
    external_id  TEXT NOT NULL,
    trunk        TEXT NOT NULL,
    from_party   TEXT NOT NULL,
    to_party     TEXT NOT NULL,
    codec        TEXT NOT NULL,
    hangup_cause TEXT,
    streams      TEXT NOT NULL
);

CREATE INDEX calls_by_external_id ON calls (external_id);
