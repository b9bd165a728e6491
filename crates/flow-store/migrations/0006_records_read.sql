-- Records read by the execution's sources (the records_out of its nodes that take no input):
-- what the history lists as an execution's size. 0 until it finished.
ALTER TABLE executions ADD COLUMN records_read INTEGER NOT NULL DEFAULT 0;
