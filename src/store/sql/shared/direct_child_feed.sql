-- directChildFeed: the newest $5 direct children of $1 (of owner $2 when $2
-- is not null) before the cursor ($3, $4): one range of the index of children
-- by time. ($6-$11, the status slots of direct_child_feed_by_status, are not
-- used.)
SELECT * FROM executions
WHERE parent_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
  AND (created_at, id) < ($3, $4)
ORDER BY created_at DESC, id DESC
LIMIT $5
