-- The rules stage (issue 5): alerts raised while a conversation is live (kept for the alerts
-- list, acknowledged by a supervisor), what automations set on a session, and the rule set as
-- changed through REST. Portable SQL (SQLite and PostgreSQL); times in Unix ms.

CREATE TABLE alerts (
    id              TEXT PRIMARY KEY,
    tenant          TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    rule_id         TEXT NOT NULL,
    rule_name       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    severity        TEXT NOT NULL,
    message         TEXT NOT NULL,
    evidence        TEXT,
    raised_at       BIGINT NOT NULL,
    acknowledged_at BIGINT,
    acknowledged_by TEXT
);

CREATE INDEX alerts_by_tenant_time ON alerts (tenant, raised_at);
CREATE INDEX alerts_by_session ON alerts (session_id);

-- What the rules stage sets on a session, kept with it: tags, priority, assignment and the SLA
-- clock as it ended (JSON text).

ALTER TABLE sessions ADD COLUMN tags TEXT;
ALTER TABLE sessions ADD COLUMN priority TEXT;
ALTER TABLE sessions ADD COLUMN assignee TEXT;
ALTER TABLE sessions ADD COLUMN team TEXT;
ALTER TABLE sessions ADD COLUMN sla TEXT;

-- The rule set as last changed through REST (one row); it wins over the configured file.
CREATE TABLE rules_config (
    id         BIGINT PRIMARY KEY,
    config     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
