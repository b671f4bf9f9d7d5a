-- extendClaim(s): extends worker $2's live claims (at $3) on the executions
-- of $1 to $4, and their leases with them, unless they are finished (a
-- cancelled one is: its holder learns it here); the executions locked first, in id
-- order; never past a node deadline (node_deadline_at: LEAST ignores a
-- null). The claims are probed by primary key (the CASE keeps the planner off
-- the index of live claims, as in finish_many). Returns the extended ids and their new expiry.
WITH target AS (
    SELECT id, node_deadline_at FROM executions
    WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
      AND status NOT IN ('completed', 'failed', 'stopped')
    ORDER BY id FOR UPDATE
), held AS (
    UPDATE execution_claims SET expires_at = LEAST($4, target.node_deadline_at), heartbeat_at = $3
    FROM target
    WHERE execution_claims.execution_id = target.id
      AND worker_id = $2 AND CASE WHEN status = 'active' THEN expires_at >= $3 ELSE false END
    RETURNING execution_id, expires_at
)
UPDATE executions SET lease_expires_at = held.expires_at
FROM held WHERE executions.id = held.execution_id
RETURNING executions.id, executions.lease_expires_at
