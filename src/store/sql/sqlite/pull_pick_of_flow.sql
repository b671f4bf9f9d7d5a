-- claimNextExecutions, step 1 of 3: the first {limit} executions of flow $4
-- in the fresh queue (CREATED, no lease: due) in hand-out order, through
-- its partial index by flow.
SELECT id FROM executions
WHERE status = 'created' AND lease_expires_at IS NULL AND flow_id = $4
ORDER BY priority DESC, COALESCE(run_at, created_at), id
LIMIT {limit}
