-- The deadline timer: the first flow deadline of an unfinished root (one
-- entry of the index of deadlines).
SELECT MIN(deadline_at) AS at FROM executions
WHERE deadline_at IS NOT NULL AND status IN ('created', 'running', 'paused')
