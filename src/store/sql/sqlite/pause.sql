-- pauseExecution: execution $1 (of owner $2 when $2 is not null) and every
-- execution below it, whatever its status, are marked paused at $3 (a
-- finished one put back by retryExecutions, or a child created under one,
-- waits PAUSED too); the queued ones among them (CREATED without a live
-- claim: in the queue, waiting for their due time, or their lease lapsed)
-- become PAUSED and leave the queue; held ones run on and finish normally.
-- Returns those changed (marked, or marked before and queued since).
-- The subtree: a run's root is one range of the index of runs; below an
-- inner execution the walk goes down the index of children. (The commit
-- group's transaction holds the database's one write lock: nothing changes
-- between the walk and the update.)
WITH RECURSIVE below(id) AS (
    SELECT id FROM executions
    WHERE id = $1 AND parent_execution_id IS NOT NULL AND ($2 IS NULL OR owner_id = $2)
    UNION ALL
    SELECT e.id FROM below b CROSS JOIN executions e WHERE e.parent_execution_id = b.id
), subtree(id) AS (
    SELECT id FROM below
    UNION ALL
    SELECT x.id FROM executions x
    WHERE x.root_execution_id = $1
      AND EXISTS (SELECT 1 FROM executions r
                  WHERE r.id = $1 AND r.parent_execution_id IS NULL AND ($2 IS NULL OR r.owner_id = $2))
)
UPDATE executions SET
    paused = TRUE,
    status = CASE WHEN status = 'created' AND (lease_expires_at IS NULL OR lease_expires_at = run_at OR lease_expires_at < $3 OR waiting > 0) THEN 'paused' ELSE status END,
    lease_expires_at = CASE WHEN status = 'created' AND (lease_expires_at IS NULL OR lease_expires_at = run_at OR lease_expires_at < $3 OR waiting > 0) THEN NULL ELSE lease_expires_at END,
    updated_at = $3
WHERE id IN (SELECT id FROM subtree)
  AND (NOT paused OR status = 'created' AND (lease_expires_at IS NULL OR lease_expires_at = run_at OR lease_expires_at < $3 OR waiting > 0))
  AND ($2 IS NULL OR owner_id = $2)
RETURNING id
