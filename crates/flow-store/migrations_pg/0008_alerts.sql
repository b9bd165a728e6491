-- Alerts (issue 10): the rules, and every alert they raised. An alert is open (firing) until
-- `resolved_at` is set; at most one is open per rule and subject, which is what lets several
-- servers sharing this database fire and resolve each alert once.
CREATE TABLE alert_rules (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    condition   text NOT NULL, -- JSON of flow-store `AlertCondition`
    webhook_url text,
    created_at  timestamptz NOT NULL
);

CREATE TABLE alerts (
    id          uuid PRIMARY KEY, -- UUID v7: id order is firing order
    rule_id     uuid NOT NULL,    -- no foreign key: alerts stay as history when their rule goes
    rule_name   text NOT NULL,
    subject     text NOT NULL,
    message     text NOT NULL,
    value       double precision,
    fired_at    timestamptz NOT NULL,
    resolved_at timestamptz,
    resolution  text
);

CREATE UNIQUE INDEX alerts_open ON alerts (rule_id, subject) WHERE resolved_at IS NULL;
