-- Server mode: who started an execution and which stored flow it ran (both NULL on the desktop
-- and in the CLI); uuids as hyphenated lower-case text, so text order is uuid order.
ALTER TABLE executions ADD COLUMN owner TEXT;
ALTER TABLE executions ADD COLUMN flow_id TEXT;

-- Listing is newest first by id (UUID v7, so start order) and pages by keyset (id < ?). Each
-- filter's index ends with id, so one index range serves filter, order and page at once; without
-- a filter, the primary key's index does. The start-time indexes served the old order only.
DROP INDEX executions_started_at;
DROP INDEX executions_flow;
CREATE INDEX executions_flow ON executions (flow, id);
CREATE INDEX executions_state ON executions (state, id);
CREATE INDEX executions_owner ON executions (owner, id);
CREATE INDEX executions_flow_id ON executions (flow_id, id);
