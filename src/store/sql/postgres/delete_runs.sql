-- Retention, step 2 of 2: deletes every execution of the runs chosen (their
-- roots, the JSON array $1) through the index of runs. PostgreSQL deletes
-- every matched row itself (the cascades that run at the end of the statement
-- find nothing left), and under REPEATABLE READ a child inserted into one of
-- the runs since step 1 makes the statement fail with a serialization error:
-- the round is retried later, the acknowledged child stays.
DELETE FROM executions
WHERE root_execution_id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
