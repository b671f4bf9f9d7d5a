-- cancelExecution, step 3 of 3: the live claims on the executions step 1
-- stopped (the JSON array $1) are released: their holders' heartbeats and
-- finishes are refused from then on (the execution rows are locked first, by
-- step 1, as on every path that touches both). One primary key probe each:
-- the ids are joined, not compared with `= ANY`, since on a small or
-- freshly filled claims table the planner scans it and tests each claim
-- against the whole array in turn (10,000 claims against a cancel of 100,000
-- ran into the statement timeout).
UPDATE execution_claims SET status = 'released'
FROM (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)) AS id) stopped
WHERE execution_claims.execution_id = stopped.id
  AND execution_claims.status = 'active'
RETURNING execution_id
