-- updateExecutionStatus: execution $12 (of owner $13 when $13 is not null)
-- takes status $1 at $2; every other field given is set, every field left out
-- (null) keeps its stored value.
UPDATE executions SET
    status = $1,
    updated_at = $2,
    error_message = COALESCE($3, error_message),
    error_node_id = COALESCE($4, error_node_id),
    started_at = COALESCE($5, started_at),
    completed_at = COALESCE($6, completed_at),
    processing_started_at = COALESCE($7, processing_started_at),
    processing_worker_id = COALESCE($8, processing_worker_id),
    failure_count = COALESCE($9, failure_count),
    last_failure_reason = COALESCE($10, last_failure_reason),
    last_failure_at = COALESCE($11, last_failure_at)
WHERE id = $12 AND ($13 IS NULL OR owner_id = $13)
RETURNING *
