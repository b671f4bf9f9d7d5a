-- rootExecutions of one owner ($2) in every status: the newest $7 roots of
-- flow $1 created in [$3, $4) before the cursor ($5, $6), one range of the
-- partial index of roots by owner, flow and time. ($8-$13, the status slots of
-- roots_by_status, are not used.)
SELECT * FROM executions
WHERE owner_id = $2 AND flow_id = $1 AND execution_depth = 0
  AND created_at >= $3 AND created_at < $4 AND (created_at, id) < ($5, $6)
ORDER BY created_at DESC, id DESC
LIMIT $7
