-- Sub-flows: the execution whose `subflow` node ran this one; NULL for an execution started on
-- its own. No foreign key, as for owner and flow_id: a child is recorded whether or not its
-- parent's row was written first.
ALTER TABLE executions ADD COLUMN parent_id uuid;

-- Listing one execution's children: filter, order and keyset page from one backward index
-- range, like the other filters (see 0001).
CREATE INDEX executions_parent_id ON executions (parent_id, id);
