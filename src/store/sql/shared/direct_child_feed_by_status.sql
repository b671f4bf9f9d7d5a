-- directChildFeed(status:): the newest $5 direct children of $1 (of owner
-- $2 when $2 is not null) before the cursor ($3, $4), in the statuses named by
-- $6-$11 (one slot per status, in the order of ExecutionStatus; a slot left
-- null matches nothing): one range of the index of children by status and
-- time per status, merged.
SELECT * FROM (
    SELECT * FROM (
        SELECT * FROM executions
        WHERE parent_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
          AND (created_at, id) < ($3, $4)
          AND status = $6
        ORDER BY created_at DESC, id DESC
        LIMIT $5) s0
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE parent_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
          AND (created_at, id) < ($3, $4)
          AND status = $7
        ORDER BY created_at DESC, id DESC
        LIMIT $5) s1
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE parent_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
          AND (created_at, id) < ($3, $4)
          AND status = $8
        ORDER BY created_at DESC, id DESC
        LIMIT $5) s2
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE parent_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
          AND (created_at, id) < ($3, $4)
          AND status = $9
        ORDER BY created_at DESC, id DESC
        LIMIT $5) s3
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE parent_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
          AND (created_at, id) < ($3, $4)
          AND status = $10
        ORDER BY created_at DESC, id DESC
        LIMIT $5) s4
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE parent_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
          AND (created_at, id) < ($3, $4)
          AND status = $11
        ORDER BY created_at DESC, id DESC
        LIMIT $5) s5
) u
ORDER BY created_at DESC, id DESC
LIMIT $5
