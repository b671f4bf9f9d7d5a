-- extendClaim(s), step 1 of 2: extends worker $2's live claims (at $3) on
-- the executions of $1 to $4, unless they are finished (a cancelled one is:
-- its holder learns it here).
UPDATE execution_claims SET
    expires_at = COALESCE(min($4, (SELECT node_deadline_at FROM executions n
                                   WHERE n.id = execution_claims.execution_id)), $4),
    heartbeat_at = $3
WHERE execution_id IN (SELECT id FROM executions
                       WHERE id IN (SELECT value FROM json_each($1))
                         AND status NOT IN ('completed', 'failed', 'stopped'))
  AND worker_id = $2 AND status = 'active' AND expires_at >= $3
RETURNING execution_id, expires_at
