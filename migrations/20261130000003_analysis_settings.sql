-- Post-call analysis: each tenant's analysis settings as changed through
-- /v1/analysis/settings (JSON text); a tenant without a row uses the embedded default.
-- Portable SQL (SQLite and PostgreSQL); times in Unix ms.

CREATE TABLE analysis_settings (
    tenant     TEXT PRIMARY KEY,
    config     TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by TEXT NOT NULL
);
