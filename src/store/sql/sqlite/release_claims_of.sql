-- cancelExecution, step 2 of 2: the live claims on the executions step 1
-- stopped (the JSON array $1) are released: their holders' heartbeats and
-- finishes are refused from then on. One primary key probe each.
UPDATE execution_claims SET status = 'released'
WHERE execution_id IN (SELECT value FROM json_each($1))
  AND status = 'active'
RETURNING execution_id
