-- Execution.ancestors: the executions above $1 (all of owner $2 when $2 is
-- not null), root first: one walk up the parent links, one primary key probe
-- per level (the walk drives: the CROSS JOIN keeps SQLite from reading the
-- table in another order).
WITH RECURSIVE up AS (
    SELECT * FROM executions
    WHERE id = (SELECT parent_execution_id FROM executions
                WHERE id = $1 AND ($2 IS NULL OR owner_id = $2))
      AND ($2 IS NULL OR owner_id = $2)
    UNION ALL
    SELECT e.* FROM up CROSS JOIN executions e
    WHERE e.id = up.parent_execution_id AND ($2 IS NULL OR e.owner_id = $2)
)
SELECT * FROM up ORDER BY execution_depth
