-- The organization (departments → desks → agents), users with data scopes and feature
-- permissions, and what a finished session gains at finalize: its placement, duration and
-- analysis. Portable SQL (SQLite and PostgreSQL); times in Unix ms; JSON as text.

CREATE TABLE departments (
    id         TEXT PRIMARY KEY,
    tenant     TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE desks (
    id            TEXT PRIMARY KEY,
    tenant        TEXT NOT NULL,
    department_id TEXT NOT NULL REFERENCES departments (id),
    name          TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);

-- An agent who leaves is deactivated, never renamed or deleted: history stays theirs.
CREATE TABLE agents (
    id             TEXT PRIMARY KEY,
    tenant         TEXT NOT NULL,
    desk_id        TEXT NOT NULL REFERENCES desks (id),
    name           TEXT NOT NULL,
    extension      TEXT,
    active         BIGINT NOT NULL DEFAULT 1,
    created_at     BIGINT NOT NULL,
    deactivated_at BIGINT
);

CREATE INDEX agents_by_tenant ON agents (tenant);

-- A user: who a token acts for, what they see (scope, JSON) and may do (permissions, JSON).
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    name        TEXT NOT NULL,
    scope       TEXT NOT NULL,
    permissions TEXT NOT NULL,
    active      BIGINT NOT NULL DEFAULT 1,
    created_at  BIGINT NOT NULL
);

ALTER TABLE api_tokens ADD COLUMN user_id TEXT;

-- Where a session sits in the organization (set live; kept at the end).
ALTER TABLE sessions ADD COLUMN agent_id TEXT;
ALTER TABLE sessions ADD COLUMN desk_id TEXT;
ALTER TABLE sessions ADD COLUMN department_id TEXT;

-- What finalize adds: the duration, the analysis (JSON), or why it was skipped.
ALTER TABLE sessions ADD COLUMN duration_ms BIGINT;
ALTER TABLE sessions ADD COLUMN category TEXT;
ALTER TABLE sessions ADD COLUMN outcome TEXT;
ALTER TABLE sessions ADD COLUMN analysis TEXT;
ALTER TABLE sessions ADD COLUMN analysis_skipped TEXT;
ALTER TABLE sessions ADD COLUMN finalized_at BIGINT;

CREATE INDEX sessions_by_tenant_ended ON sessions (tenant, state, finalized_at);

-- One row per score of an analysed session, for score-range filters.
CREATE TABLE session_scores (
    session_id TEXT NOT NULL,
    label      TEXT NOT NULL,
    score      BIGINT NOT NULL,
    PRIMARY KEY (session_id, label)
);

CREATE INDEX session_scores_by_label ON session_scores (label, score);

-- One row per checklist item of an analysed session, for checklist filters.
CREATE TABLE session_checklist (
    session_id TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    done       BIGINT NOT NULL,
    PRIMARY KEY (session_id, item_id)
);
