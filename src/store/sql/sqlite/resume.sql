-- resumeExecution: the executions marked paused at or below execution $1
-- (of owner $2 when $2 is not null) are no longer marked (at $3); the PAUSED
-- ones among them become CREATED again: in the queue in their old order
-- (priority, due time, id), or waiting for their due time when it is still
-- to come, or waiting for a slot of their run or key (under a lease that
-- never lapses; the admission that follows hands out what there is room
-- for). (One set PAUSED by updateExecutionStatus, unmarked, stays so.)
-- Returns those changed.
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
    paused = FALSE,
    status = CASE WHEN status = 'paused' THEN 'created' ELSE status END,
    lease_expires_at = CASE
        WHEN status = 'paused' AND waiting > 0 THEN '9999-12-31T23:59:59+00:00'
        WHEN status = 'paused' AND run_at > $3 THEN run_at
        WHEN status = 'paused' THEN NULL
        ELSE lease_expires_at END,
    updated_at = $3
WHERE id IN (SELECT id FROM subtree)
  AND paused
  AND ($2 IS NULL OR owner_id = $2)
RETURNING id
