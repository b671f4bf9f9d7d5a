-- Retention, step 1 of 2: up to $3 runs that may go, oldest finished first
-- (through the index of finished roots), each with its size. A run may go when
-- its root is terminal with completed_at before $1, nothing in its tree is
-- CREATED, RUNNING or PAUSED, and nothing in it holds a live claim (at $2).
SELECT r.id, (SELECT COUNT(*) FROM executions x WHERE x.root_execution_id = r.id) AS size
FROM executions r
WHERE r.execution_depth = 0
  AND r.status IN ('completed', 'failed', 'stopped')
  AND r.completed_at < $1
  AND NOT EXISTS (
      SELECT 1 FROM executions x
      WHERE x.root_execution_id = r.id AND x.status IN ('created', 'running', 'paused'))
  AND NOT EXISTS (
      SELECT 1 FROM executions x JOIN execution_claims c ON c.execution_id = x.id
      WHERE x.root_execution_id = r.id AND c.status = 'active' AND c.expires_at >= $2)
ORDER BY r.completed_at, r.id
LIMIT $3
