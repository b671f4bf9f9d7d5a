-- The due timer: up to 1,000 executions waiting for their due time (CREATED,
-- the lease their due time) whose time has come by $1 go to the fresh queue,
-- read through the index of waiting executions in due order (one under a
-- paused execution becomes PAUSED instead).
UPDATE executions SET
    status = CASE WHEN paused THEN 'paused' ELSE status END,
    lease_expires_at = NULL
WHERE id IN (
    SELECT id FROM executions
    WHERE status = 'created' AND lease_expires_at IS NOT NULL AND lease_expires_at = run_at
      AND lease_expires_at <= $1
    ORDER BY lease_expires_at
    LIMIT 1000
) AND lease_expires_at <= $1
RETURNING id
