-- The children of every parent of the JSON array $1 (of every owner; $2,
-- the owner of `owner_children`, is not used) after ($3, $4), oldest first,
-- at most $5 per parent and $6 in all (the caller asks for one more than it
-- allows, to refuse more). Each parent is one range of the index of children,
-- read through the index alone. The select list is the columns the selection
-- reads.
-- (The CROSS JOIN fixes the join order.)
SELECT r.{columns}
FROM json_each($1) AS k
CROSS JOIN executions r
WHERE r.rowid IN (
    SELECT x.rowid FROM executions x
    WHERE x.parent_execution_id = k.value
      AND (x.created_at, x.id) > ($3, $4)
    ORDER BY x.created_at, x.id
    LIMIT $5)
ORDER BY r.created_at, r.id
LIMIT $6
