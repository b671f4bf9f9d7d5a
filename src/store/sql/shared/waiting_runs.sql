-- The runs with executions waiting for a slot of their run (read through
-- the index of waiting executions, whole).
SELECT DISTINCT root_execution_id AS key FROM executions
WHERE waiting = 1 AND status = 'created'
