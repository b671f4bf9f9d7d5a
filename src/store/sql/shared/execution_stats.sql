-- executionStats over the descendants of root $1 (the root excluded; of
-- owner $2 when $2 is not null), as one aggregate over the index of runs.
SELECT CAST(COUNT(*) AS BIGINT) AS total,
       CAST(SUM(CASE WHEN status = 'created' THEN 1 ELSE 0 END) AS BIGINT) AS created,
       CAST(SUM(CASE WHEN status = 'running' THEN 1 ELSE 0 END) AS BIGINT) AS running,
       CAST(SUM(CASE WHEN status = 'paused' THEN 1 ELSE 0 END) AS BIGINT) AS paused,
       CAST(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS completed,
       CAST(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) AS BIGINT) AS failed,
       CAST(SUM(CASE WHEN status = 'stopped' THEN 1 ELSE 0 END) AS BIGINT) AS stopped,
       CAST(MAX(execution_depth) AS BIGINT) AS max_depth,
       MIN(created_at) AS first_created_at,
       MAX(completed_at) AS last_completed_at
FROM executions
WHERE root_execution_id = $1 AND id <> $1 AND ($2 IS NULL OR owner_id = $2)
