-- claimExecution: claims execution $4 for worker $1 at $2 until $3, unless
-- it is terminal, waits for a slot of its run or key, is queued under a
-- paused execution (only its holder may
-- claim it again), or another worker holds a live claim on it. A claim row is
-- taken over when it is not active, has expired, or is the same worker's (a
-- re-claim extends it and keeps its start). The execution row is locked
-- first (as on every path that touches both rows) and records its processing
-- worker, since when, and its lease; the claim is read back off it.
-- ($5 and $6 belong to pulls, which share these parameters.)
-- A run with a node timeout (node_timeout_ms, its root's nodeTimeoutMs)
-- caps the claim at its start plus the timeout (node_deadline_at, kept by a
-- re-claim as the start is): no lease or heartbeat reaches past it, and the
-- deadline timer takes it back there as a retry: past that deadline, before
-- the timer has come, nobody claims it (a new claim would escape the count).
WITH claimed AS (
    INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)
    SELECT id, $1, $2, CASE WHEN node_timeout_ms IS NULL THEN $3 ELSE LEAST($3, $2 + node_timeout_ms * interval '1 millisecond') END, $2, 'active' FROM executions
    WHERE id = $4 AND status NOT IN ('completed', 'failed', 'stopped') AND waiting = 0
      AND NOT COALESCE(node_deadline_at <= $2, FALSE)
      AND NOT (paused AND status IN ('created', 'paused') AND NOT EXISTS (
            SELECT 1 FROM execution_claims c
            WHERE c.execution_id = $4 AND c.worker_id = $1 AND c.status = 'active' AND c.expires_at >= $2))
    FOR UPDATE
    ON CONFLICT (execution_id) DO UPDATE SET
        worker_id = excluded.worker_id,
        claimed_at = CASE WHEN execution_claims.status = 'active'
                           AND execution_claims.worker_id = excluded.worker_id
                           AND execution_claims.expires_at >= excluded.claimed_at
                          THEN execution_claims.claimed_at ELSE excluded.claimed_at END,
        expires_at = CASE WHEN execution_claims.status = 'active'
                           AND execution_claims.worker_id = excluded.worker_id
                           AND execution_claims.expires_at >= excluded.claimed_at
                          THEN LEAST(excluded.expires_at, COALESCE(
                                   (SELECT node_deadline_at FROM executions n WHERE n.id = excluded.execution_id),
                                   excluded.expires_at))
                          ELSE excluded.expires_at END,
        heartbeat_at = excluded.heartbeat_at,
        status = 'active'
    WHERE execution_claims.status <> 'active'
       OR execution_claims.expires_at < excluded.claimed_at
       OR execution_claims.worker_id = excluded.worker_id
    RETURNING execution_id, claimed_at, expires_at
)
UPDATE executions SET
    processing_worker_id = $1,
    processing_started_at = claimed.claimed_at,
    updated_at = $2,
    lease_expires_at = claimed.expires_at,
    node_deadline_at = claimed.claimed_at + executions.node_timeout_ms * interval '1 millisecond'
FROM claimed WHERE executions.id = claimed.execution_id
RETURNING executions.*
