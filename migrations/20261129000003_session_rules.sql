-- What the rules stage sets on a session, kept with it: tags, priority, assignment and the SLA
-- clock as it ended (JSON text). Portable SQL.

ALTER TABLE sessions ADD COLUMN tags TEXT;
ALTER TABLE sessions ADD COLUMN priority TEXT;
ALTER TABLE sessions ADD COLUMN assignee TEXT;
ALTER TABLE sessions ADD COLUMN team TEXT;
ALTER TABLE sessions ADD COLUMN sla TEXT;
