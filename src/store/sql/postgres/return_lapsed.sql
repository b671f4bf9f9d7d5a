-- Lapsed leases back into the queue: up to 1,000 CREATED executions whose
-- lease ran out before $1 (a claim that lapsed, or a wait for the due time
-- that is over) lose it, read through the index of leased rows by expiry
-- (which reads only the lapsed ones). One claimed before it was due waits
-- for its due time again; one under a paused execution (its holder died
-- after the pause) becomes PAUSED instead. A claim that lapsed at its node
-- deadline is left to the deadline timer, which counts it as a failure.
UPDATE executions SET
    status = CASE WHEN paused THEN 'paused' ELSE status END,
    lease_expires_at = CASE WHEN paused THEN NULL WHEN run_at > $1 THEN run_at END,
    node_deadline_at = NULL
WHERE id IN (
    SELECT id FROM executions
    WHERE status = 'created' AND lease_expires_at IS NOT NULL AND lease_expires_at < $1
      AND (node_deadline_at IS NULL OR lease_expires_at < node_deadline_at)
    ORDER BY lease_expires_at
    LIMIT 1000
    FOR UPDATE SKIP LOCKED
) AND lease_expires_at < $1
