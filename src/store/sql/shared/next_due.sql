-- The due timer: when the first execution waiting for its due time is due
-- (one entry of the index of waiting executions).
SELECT MIN(lease_expires_at) AS at FROM executions
WHERE status = 'created' AND lease_expires_at IS NOT NULL AND lease_expires_at = run_at
