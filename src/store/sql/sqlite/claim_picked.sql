-- claimExecution and claimNextExecutions, step 2 of 3: claims the picked
-- executions (the JSON array $8) for worker $1 at $2 until $3, unless terminal
-- or held by another worker's live claim (a claim row is taken over when it is
-- not active, has expired, or is the same worker's: a re-claim extends it).
-- Returns the claims taken.
-- A run with a node timeout (node_timeout_ms) caps the claim at its start
-- plus the timeout (the node deadline, which a re-claim keeps, as it keeps
-- the start), computed as mark_claimed computes node_deadline_at, so the
-- two texts are equal.
INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)
SELECT id, $1, $2, CASE WHEN node_timeout_ms IS NULL THEN $3 ELSE min($3, strftime('%Y-%m-%dT%H:%M:%f+00:00', julianday($2) + node_timeout_ms / 86400000.0)) END, $2, 'active'
FROM executions
WHERE id IN (SELECT value FROM json_each($8)) AND status NOT IN ('completed', 'failed', 'stopped')
ON CONFLICT (execution_id) DO UPDATE SET
    worker_id = excluded.worker_id,
    claimed_at = CASE WHEN execution_claims.status = 'active'
                       AND execution_claims.worker_id = excluded.worker_id
                       AND execution_claims.expires_at >= excluded.claimed_at
                      THEN execution_claims.claimed_at ELSE excluded.claimed_at END,
    expires_at = CASE WHEN execution_claims.status = 'active'
                       AND execution_claims.worker_id = excluded.worker_id
                       AND execution_claims.expires_at >= excluded.claimed_at
                      THEN min(excluded.expires_at, COALESCE(
                               (SELECT node_deadline_at FROM executions n WHERE n.id = excluded.execution_id),
                               excluded.expires_at))
                      ELSE excluded.expires_at END,
    heartbeat_at = excluded.heartbeat_at,
    status = 'active'
WHERE execution_claims.status <> 'active'
   OR execution_claims.expires_at < excluded.claimed_at
   OR execution_claims.worker_id = excluded.worker_id
RETURNING execution_id
