-- The children of owner $2 of every parent of the JSON array $1 after ($3,
-- $4), oldest first, at most $5 per parent and $6 in all (the caller asks for
-- one more than it allows, to refuse more). Each parent is one range of the
-- index of children. The select list is the columns the selection reads.
-- (Joined per key: see executions_by_ids.)
SELECT r.{columns}
FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS k(value)
CROSS JOIN LATERAL (
    SELECT x.* FROM executions x
    WHERE x.parent_execution_id = k.value AND x.owner_id = $2
      AND (x.created_at, x.id) > ($3, $4)
    ORDER BY x.created_at, x.id
    LIMIT $5
    OFFSET 0
) r
ORDER BY r.created_at, r.id
LIMIT $6
