-- cancelExecution, step 1 of 2: execution $1 (of owner $2 when $2 is not
-- null) and every execution below it that is not finished become STOPPED at
-- $3, their error message $4 (the reason): from then on none of them is
-- handed out or claimable. Returns those stopped; step 2 releases their
-- claims (a holder's heartbeat and finish are refused from then on).
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
    status = 'stopped',
    completed_at = $3,
    updated_at = $3,
    error_message = $4,
    lease_expires_at = NULL
WHERE id IN (SELECT id FROM subtree)
  AND status NOT IN ('completed', 'failed', 'stopped')
  AND ($2 IS NULL OR owner_id = $2)
RETURNING id
