-- releaseExecution, step 1 of 2: worker $2 releases its active claim on
-- execution $1.
UPDATE execution_claims SET status = 'released'
WHERE execution_id = $1 AND worker_id = $2 AND status = 'active'
RETURNING execution_id
