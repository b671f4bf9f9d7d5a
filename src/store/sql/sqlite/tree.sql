-- executionTree: the subtree at execution $1 (of owner $2 when $2 is not
-- null), by depth, then created_at, then id; at most $3 rows (the caller asks
-- for one more than it allows, to refuse more). The select list is what the
-- selection reads.
--
-- A root tree is one range of the index of runs (the second branch, taken
-- only when $1 is a root). Below a root the recursion carries whole rows and
-- finds each node's children by one probe of the index of children (the
-- CROSS JOIN fixes the join order). Either way it reads the subtree and
-- nothing else.
WITH RECURSIVE subtree AS (
    SELECT x.* FROM executions x
    WHERE x.id = $1 AND x.parent_execution_id IS NOT NULL AND ($2 IS NULL OR x.owner_id = $2)
    UNION ALL
    SELECT c.* FROM subtree s CROSS JOIN executions c
    WHERE c.parent_execution_id = s.id AND ($2 IS NULL OR c.owner_id = $2)
)
SELECT t.{columns} FROM (
    SELECT * FROM subtree
    UNION ALL
    SELECT x.* FROM executions x
    WHERE x.root_execution_id = $1 AND ($2 IS NULL OR x.owner_id = $2)
      AND EXISTS (SELECT 1 FROM executions r WHERE r.id = $1 AND r.parent_execution_id IS NULL)
) t
ORDER BY t.execution_depth, t.created_at, t.id
LIMIT $3
