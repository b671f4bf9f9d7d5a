-- releaseExecution: worker $2 gives up its active claim on execution $1 at
-- $3. The claim is released; the execution is no longer processed by it and
-- keeps no lease: it is claimable again at once (when it is due; until then
-- it waits, its lease its due time). Nothing for anyone else.
WITH target AS (
    SELECT id FROM executions WHERE id = $1 FOR UPDATE
), held AS (
    UPDATE execution_claims SET status = 'released'
    FROM target
    WHERE execution_claims.execution_id = target.id
      AND execution_claims.worker_id = $2 AND execution_claims.status = 'active'
    RETURNING execution_claims.execution_id
)
UPDATE executions SET
    status = CASE WHEN paused AND status = 'created' THEN 'paused' ELSE status END,
    lease_expires_at = CASE WHEN paused THEN NULL WHEN run_at > $3 THEN run_at END,
    processing_started_at = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_started_at END,
    updated_at = CASE WHEN processing_worker_id = $2 THEN $3 ELSE updated_at END,
    processing_worker_id = CASE WHEN processing_worker_id = $2 THEN NULL ELSE processing_worker_id END,
    node_deadline_at = NULL
FROM held WHERE executions.id = held.execution_id
RETURNING executions.*
