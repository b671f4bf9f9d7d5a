-- deleteExecution, step 1 of 2: the DELETED events of execution $1 (of owner
-- $2 when $2 is not null) and its whole subtree, parents first, in the
-- deleting transaction (the cascade of step 2 logs nothing). No row: nothing
-- to delete.
WITH RECURSIVE subtree(id) AS (
    SELECT id FROM executions WHERE id = $1 AND ($2 IS NULL OR owner_id = $2)
    UNION ALL
    SELECT e.id FROM executions e JOIN subtree s ON e.parent_execution_id = s.id
)
INSERT INTO execution_events (root_execution_id, execution_id, owner_id, kind)
SELECT e.root_execution_id, e.id, e.owner_id, 'deleted'
FROM executions e JOIN subtree s ON s.id = e.id
ORDER BY e.execution_depth, e.created_at, e.id
