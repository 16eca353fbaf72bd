-- Reports (issue: reports and usage): roll-ups of finished, analysed sessions, so a report reads
-- a few thousand summed rows whatever the number of calls. One row per tenant, local day
-- (YYYYMMDD in the configured reports time zone), [local hour,] agent, desk, department and
-- channel; each finished session adds itself with an upsert. A missing placement is '' (NULL
-- would make every such session a row of its own under the unique key). Portable SQL.

-- Each table has a second index holding every column a report reads, so a report is answered
-- from that index alone, in key order (the rows themselves lie in the order sessions finished:
-- on SQLite, looking each one up made reports over a million calls 4-8x slower). The score
-- indexes put the label after the day, so sums per day and label come out in index order.

-- Hourly rows: the day and realtime reports.
CREATE TABLE report_hourly (
    tenant        TEXT NOT NULL,
    local_day     BIGINT NOT NULL,
    local_hour    BIGINT NOT NULL,
    agent_id      TEXT NOT NULL,
    desk_id       TEXT NOT NULL,
    department_id TEXT NOT NULL,
    channel       TEXT NOT NULL,
    calls         BIGINT NOT NULL,
    analyzed      BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    alerts        BIGINT NOT NULL,
    PRIMARY KEY (tenant, local_day, local_hour, agent_id, desk_id, department_id, channel)
);

CREATE INDEX report_hourly_read
    ON report_hourly (tenant, local_day, local_hour, agent_id, desk_id, department_id, calls, analyzed, duration_ms, alerts);

-- Per score label: the sum of the scores (1-10) and how many there were.
CREATE TABLE report_hourly_scores (
    tenant        TEXT NOT NULL,
    local_day     BIGINT NOT NULL,
    local_hour    BIGINT NOT NULL,
    agent_id      TEXT NOT NULL,
    desk_id       TEXT NOT NULL,
    department_id TEXT NOT NULL,
    channel       TEXT NOT NULL,
    label         TEXT NOT NULL,
    score_sum     BIGINT NOT NULL,
    score_count   BIGINT NOT NULL,
    PRIMARY KEY (tenant, local_day, local_hour, agent_id, desk_id, department_id, channel, label)
);

CREATE INDEX report_hourly_scores_read
    ON report_hourly_scores (tenant, local_day, local_hour, label, agent_id, desk_id, department_id, score_sum, score_count);

-- Daily rows (the same sums without the hour): month and year reports and usage read 24 times
-- fewer rows.
CREATE TABLE report_daily (
    tenant        TEXT NOT NULL,
    local_day     BIGINT NOT NULL,
    agent_id      TEXT NOT NULL,
    desk_id       TEXT NOT NULL,
    department_id TEXT NOT NULL,
    channel       TEXT NOT NULL,
    calls         BIGINT NOT NULL,
    analyzed      BIGINT NOT NULL,
    duration_ms   BIGINT NOT NULL,
    alerts        BIGINT NOT NULL,
    PRIMARY KEY (tenant, local_day, agent_id, desk_id, department_id, channel)
);

CREATE INDEX report_daily_read
    ON report_daily (tenant, local_day, agent_id, desk_id, department_id, calls, analyzed, duration_ms, alerts);

CREATE TABLE report_daily_scores (
    tenant        TEXT NOT NULL,
    local_day     BIGINT NOT NULL,
    agent_id      TEXT NOT NULL,
    desk_id       TEXT NOT NULL,
    department_id TEXT NOT NULL,
    channel       TEXT NOT NULL,
    label         TEXT NOT NULL,
    score_sum     BIGINT NOT NULL,
    score_count   BIGINT NOT NULL,
    PRIMARY KEY (tenant, local_day, agent_id, desk_id, department_id, channel, label)
);

CREATE INDEX report_daily_scores_read
    ON report_daily_scores (tenant, local_day, label, agent_id, desk_id, department_id, score_sum, score_count);
