-- Retention, step 2 of 2: deletes the runs chosen (their roots, the JSON
-- array $1); the cascade takes their trees. One writer at a time: nothing
-- changed since step 1.
DELETE FROM executions WHERE id IN (SELECT value FROM json_each($1))
