-- When the oldest finished run still kept finished (the index of finished
-- roots: one entry read).
SELECT MIN(completed_at) AS at FROM executions
WHERE execution_depth = 0 AND status IN ('completed', 'failed', 'stopped')
