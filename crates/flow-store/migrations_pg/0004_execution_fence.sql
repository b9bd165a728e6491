-- The fencing token of the worker delivery that runs the execution: writes carrying an older
-- token than the row's are ignored, so a worker whose job was reclaimed cannot overwrite the
-- record of the run that replaced it. NULL where no queue is involved.
ALTER TABLE executions ADD COLUMN fence bigint;
