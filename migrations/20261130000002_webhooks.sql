-- Webhooks for finished sessions: each tenant's endpoints (with the secret that signs their
-- deliveries), the outbox of deliveries (one per endpoint and session, the body serialized once
-- when queued), and every attempt of each. Portable SQL (SQLite and PostgreSQL); times in Unix
-- ms; JSON as text; booleans 0/1.

CREATE TABLE webhook_endpoints (
    id                 TEXT PRIMARY KEY,
    tenant             TEXT NOT NULL,
    url                TEXT NOT NULL,
    description        TEXT,
    -- Needed in the clear to sign; shown to the tenant only when the endpoint is created.
    secret             TEXT NOT NULL,
    active             BIGINT NOT NULL DEFAULT 1,
    created_at         BIGINT NOT NULL,
    deactivated_at     BIGINT,
    deactivated_reason TEXT
);

CREATE INDEX webhook_endpoints_by_tenant ON webhook_endpoints (tenant, active);

-- The outbox. `state` is pending, delivered or failed. A delivery task claims a due pending row
-- by setting `locked_until` (a lease a little longer than one attempt) and settles it only
-- while it still holds that lease, so neither two loops nor a restart send it twice at once.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    endpoint_id     TEXT NOT NULL REFERENCES webhook_endpoints (id),
    tenant          TEXT NOT NULL,
    session_id      TEXT NOT NULL,
    event           TEXT NOT NULL,
    body            TEXT NOT NULL,
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    queued_at       BIGINT NOT NULL,
    next_attempt_at BIGINT,
    locked_until    BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    settled_at      BIGINT,
    UNIQUE (endpoint_id, session_id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, queued_at);

-- One row per attempt: the HTTP status, or the error when there was no answer.
CREATE TABLE webhook_attempts (
    id          TEXT PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES webhook_deliveries (id),
    attempt     BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status      BIGINT,
    error       TEXT,
    duration_ms BIGINT NOT NULL
);

CREATE INDEX webhook_attempts_by_delivery ON webhook_attempts (delivery_id, at);
