-- rootExecutions: the newest $7 roots of flow $1 (of owner $2 when $2 is not
-- null) created in [$3, $4) before the cursor ($5, $6), in the statuses named
-- by $8-$13 (one slot per status, in the order of ExecutionStatus; a slot left
-- null matches nothing). Each status is one range of the index of roots by
-- flow, status and time, read newest first and cut at the page size; the
-- ranges are merged. So a page costs about $7 index entries per status,
-- however many roots the flow holds.
SELECT * FROM (
    SELECT * FROM (
        SELECT * FROM executions
        WHERE flow_id = $1 AND execution_depth = 0 AND ($2 IS NULL OR owner_id = $2)
          AND created_at >= $3 AND created_at < $4 AND (created_at, id) < ($5, $6)
          AND status = $8
        ORDER BY created_at DESC, id DESC
        LIMIT $7) s0
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE flow_id = $1 AND execution_depth = 0 AND ($2 IS NULL OR owner_id = $2)
          AND created_at >= $3 AND created_at < $4 AND (created_at, id) < ($5, $6)
          AND status = $9
        ORDER BY created_at DESC, id DESC
        LIMIT $7) s1
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE flow_id = $1 AND execution_depth = 0 AND ($2 IS NULL OR owner_id = $2)
          AND created_at >= $3 AND created_at < $4 AND (created_at, id) < ($5, $6)
          AND status = $10
        ORDER BY created_at DESC, id DESC
        LIMIT $7) s2
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE flow_id = $1 AND execution_depth = 0 AND ($2 IS NULL OR owner_id = $2)
          AND created_at >= $3 AND created_at < $4 AND (created_at, id) < ($5, $6)
          AND status = $11
        ORDER BY created_at DESC, id DESC
        LIMIT $7) s3
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE flow_id = $1 AND execution_depth = 0 AND ($2 IS NULL OR owner_id = $2)
          AND created_at >= $3 AND created_at < $4 AND (created_at, id) < ($5, $6)
          AND status = $12
        ORDER BY created_at DESC, id DESC
        LIMIT $7) s4
    UNION ALL
    SELECT * FROM (
        SELECT * FROM executions
        WHERE flow_id = $1 AND execution_depth = 0 AND ($2 IS NULL OR owner_id = $2)
          AND created_at >= $3 AND created_at < $4 AND (created_at, id) < ($5, $6)
          AND status = $13
        ORDER BY created_at DESC, id DESC
        LIMIT $7) s5
) u
ORDER BY created_at DESC, id DESC
LIMIT $7
