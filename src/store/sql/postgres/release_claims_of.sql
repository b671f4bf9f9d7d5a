-- cancelExecution, step 3 of 3: the live claims on the executions step 1
-- stopped (the JSON array $1) are released: their holders' heartbeats and
-- finishes are refused from then on (the execution rows are locked first, by
-- step 1, as on every path that touches both). One primary key probe each.
UPDATE execution_claims SET status = 'released'
WHERE execution_id = ANY (ARRAY(SELECT jsonb_array_elements_text(CAST($1 AS jsonb))))
  AND status = 'active'
RETURNING execution_id
