-- claimExecution, step 1 of 3: execution $4, unless it is terminal, waits
-- for a slot of its run or key, is past its node deadline (the deadline
-- timer takes it back), or is queued under a paused execution (only its holder may claim it again). Every
-- write runs in the commit group's transaction, which holds the one write
-- lock of the database: nobody else claims it between these steps.
SELECT id FROM executions
WHERE id = $4 AND status NOT IN ('completed', 'failed', 'stopped') AND waiting = 0
  AND NOT COALESCE(node_deadline_at <= $2, FALSE)
  AND NOT (paused AND status IN ('created', 'paused') AND NOT EXISTS (
        SELECT 1 FROM execution_claims c
        WHERE c.execution_id = $4 AND c.worker_id = $1 AND c.status = 'active' AND c.expires_at >= $2))
