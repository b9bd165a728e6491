-- Alerts (issue 10): the rules, and every alert they raised. An alert is open (firing) until
-- `resolved_at` is set; at most one is open per rule and subject, which is what lets several
-- evaluators (servers sharing a database, or restarts) fire and resolve each alert once.
CREATE TABLE alert_rules (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    condition   TEXT NOT NULL, -- JSON of flow-store `AlertCondition`
    webhook_url TEXT,
    created_at  TEXT NOT NULL
);

CREATE TABLE alerts (
    id          TEXT PRIMARY KEY, -- UUID v7: id order is firing order
    rule_id     TEXT NOT NULL,    -- no foreign key: alerts stay as history when their rule goes
    rule_name   TEXT NOT NULL,
    subject     TEXT NOT NULL,
    message     TEXT NOT NULL,
    value       REAL,
    fired_at    TEXT NOT NULL,
    resolved_at TEXT,
    resolution  TEXT
);

CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, subject) WHERE resolved_at IS NULL;
