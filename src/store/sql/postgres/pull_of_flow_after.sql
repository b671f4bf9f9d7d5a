-- claimNextExecutions of flow $4 from after the queue head: claims for worker
-- $1 at $2 until $3 the first {limit} executions of the flow in the fresh
-- queue (CREATED, no lease: due) after the head ($5, $6, $7: its priority, due
-- time and id), within the head priority, in hand-out order, skipping rows
-- another pull has locked. The same range of the same index as
-- `pull_of_flow`, entered further on.
--
-- {limit} is written into the statement (a plan is kept per limit): with a
-- bound limit the generic plan is costed for a tenth of the queue, looks
-- dearer than a plan for the actual limit, and every call is planned again.
-- The flow and the head are compared through scalar subqueries for the same
-- reason: a plan for the actual values sees how much of the index lies past
-- the head and looked cheaper than the kept plan, so every pull of a flow
-- among many was planned anew. Behind a subquery both plans cost the same.
-- A run with a node timeout (node_timeout_ms, its root's nodeTimeoutMs)
-- caps the claim at its start plus the timeout (node_deadline_at, kept by a
-- re-claim as the start is): no lease or heartbeat reaches past it, and the
-- deadline timer takes it back there as a retry.
WITH candidates AS (
    SELECT id, node_timeout_ms FROM executions
    WHERE status = 'created' AND lease_expires_at IS NULL
      AND flow_id = (SELECT $4)
      AND priority = (SELECT $5)
      AND (COALESCE(run_at, created_at), id) > ((SELECT $6), (SELECT $7))
    ORDER BY priority DESC, COALESCE(run_at, created_at), id
    LIMIT {limit}
    FOR UPDATE SKIP LOCKED
), claimed AS (
    INSERT INTO execution_claims (execution_id, worker_id, claimed_at, expires_at, heartbeat_at, status)
    SELECT id, $1, $2, CASE WHEN node_timeout_ms IS NULL THEN $3 ELSE LEAST($3, $2 + node_timeout_ms * interval '1 millisecond') END, $2, 'active'
    FROM candidates
    ON CONFLICT (execution_id) DO UPDATE SET
        worker_id = excluded.worker_id,
        claimed_at = CASE WHEN execution_claims.status = 'active'
                           AND execution_claims.worker_id = excluded.worker_id
                           AND execution_claims.expires_at >= excluded.claimed_at
                          THEN execution_claims.claimed_at ELSE excluded.claimed_at END,
        expires_at = excluded.expires_at,
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
