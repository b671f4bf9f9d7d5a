-- extendClaim(s): extends worker $2's live claims (at $3) on the executions
-- of $1 to $4, and their leases with them, unless they are finished (a
-- cancelled one is: its holder learns it here); the executions locked first, in id
-- order. The claims are probed by primary key (the CASE keeps the planner off
-- the index of live claims, as in finish_many). Returns the extended ids.
WITH target AS (
    SELECT id FROM executions
    WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
      AND status NOT IN ('completed', 'failed', 'stopped')
    ORDER BY id FOR UPDATE
), held AS (
    UPDATE execution_claims SET expires_at = $4, heartbeat_at = $3
    WHERE execution_id IN (SELECT id FROM target)
      AND worker_id = $2 AND CASE WHEN status = 'active' THEN expires_at >= $3 ELSE false END
    RETURNING execution_id
)
UPDATE executions SET lease_expires_at = $4
FROM held WHERE executions.id = held.execution_id
RETURNING executions.id
