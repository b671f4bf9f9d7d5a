-- updateExecutionStatus: execution $12 (of owner $13 when $13 is not null)
-- takes status $1 at $2; every other field given is set, every field left out
-- (null) keeps its stored value. $14 is its new due time when this puts it
-- back counting a failure (a retry: null otherwise). A CREATED execution that
-- holds no claim is in the fresh queue when it is due, and waits for its due
-- time otherwise (its lease its due time); a claimed one keeps its lease.
-- Under a paused execution, CREATED is PAUSED (out of the queue, no lease).
-- A finished execution limited by its run or key that this sets CREATED or
-- PAUSED again gives up the slots it held and waits for them (under the
-- lease that never lapses; the admission that follows hands out what there
-- is room for), as a retryExecutions would.
UPDATE executions SET
    status = CASE WHEN paused AND $1 = 'created' THEN 'paused' ELSE $1 END,
    updated_at = $2,
    error_message = COALESCE($3, error_message),
    error_node_id = COALESCE($4, error_node_id),
    started_at = COALESCE($5, started_at),
    completed_at = COALESCE($6, completed_at),
    processing_started_at = COALESCE($7, processing_started_at),
    processing_worker_id = COALESCE($8, processing_worker_id),
    failure_count = COALESCE($9, failure_count),
    last_failure_reason = COALESCE($10, last_failure_reason),
    last_failure_at = COALESCE($11, last_failure_at),
    run_at = COALESCE($14, run_at),
    waiting = CASE
        WHEN status NOT IN ('completed', 'failed', 'stopped') OR $1 NOT IN ('created', 'paused')
            THEN waiting
        WHEN max_concurrency IS NOT NULL AND parent_execution_id IS NOT NULL THEN 1
        WHEN concurrency_key IN (SELECT key FROM concurrency_limits) THEN 2
        ELSE 0 END,
    run_slot = CASE WHEN status IN ('completed', 'failed', 'stopped') AND $1 IN ('created', 'paused')
                    THEN FALSE ELSE run_slot END,
    key_slot = CASE WHEN status IN ('completed', 'failed', 'stopped') AND $1 IN ('created', 'paused')
                    THEN FALSE ELSE key_slot END,
    lease_expires_at = CASE
        WHEN $1 <> 'created' THEN lease_expires_at
        WHEN paused THEN NULL
        WHEN status IN ('completed', 'failed', 'stopped')
             AND ((max_concurrency IS NOT NULL AND parent_execution_id IS NOT NULL)
                  OR concurrency_key IN (SELECT key FROM concurrency_limits))
            THEN '9999-12-31T23:59:59+00:00'
        WHEN lease_expires_at IS NOT NULL AND lease_expires_at <> COALESCE(run_at, created_at)
            THEN lease_expires_at
        WHEN COALESCE($14, run_at) > $2 THEN COALESCE($14, run_at)
        END
WHERE id = $12 AND ($13 IS NULL OR owner_id = $13)
RETURNING *
