-- The deadline timer: the unfinished executions whose node deadline is at
-- or before $1 (500, the earliest first), with the worker that was
-- processing each: read through the index of node deadlines, which holds
-- only unfinished executions that have one.
SELECT id, processing_worker_id AS worker_id FROM executions
WHERE node_deadline_at IS NOT NULL AND node_deadline_at <= $1
  AND status NOT IN ('completed', 'failed', 'stopped')
ORDER BY node_deadline_at
LIMIT 500
