-- The runs and keys with executions waiting for one of their slots (the
-- janitor's rounds): runs as 1, keys as 2. Read through the indexes of
-- waiting executions, whole.
SELECT DISTINCT 1 AS kind, root_execution_id AS key FROM executions
WHERE waiting = 1 AND status = 'created'
UNION ALL
SELECT DISTINCT 2 AS kind, concurrency_key AS key FROM executions
WHERE waiting = 2 AND status = 'created'
