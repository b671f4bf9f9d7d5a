-- releaseExecution, step 2 of 2 (only when step 1 released a claim): the
-- execution is no longer processed by worker $2 and keeps no lease (it waits
-- for its due time when that is later); updated at $3.
UPDATE executions SET
    status = CASE WHEN paused AND status = 'created' THEN 'paused' ELSE status END,
    lease_expires_at = CASE WHEN paused THEN NULL WHEN run_at > $3 THEN run_at END,
    processing_started_at = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_started_at END,
    updated_at = CASE WHEN processing_worker_id = $2 THEN $3 ELSE updated_at END,
    processing_worker_id = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_worker_id END,
    node_deadline_at = NULL
WHERE id = $1
RETURNING *
