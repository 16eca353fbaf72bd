-- Alerts raised by the rules stage while a conversation is live: kept for the alerts list,
-- acknowledged by a supervisor. Portable SQL (SQLite and PostgreSQL); times in Unix ms.

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
