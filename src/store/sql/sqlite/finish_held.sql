-- finishExecution(s), step 2 of 2: the executions of the items whose claims
-- step 1 released (the JSON array $3) take their final status at $2, or go
-- back to CREATED for a retry, counting the failure (due again at the item's
-- retry_at), or become FAILED when that retry would reach the item's
-- max_attempts (errorMessage: its exhausted_message); a retry under a paused
-- execution is PAUSED.
UPDATE executions SET
    status = CASE WHEN i.status = 'created' AND executions.failure_count + 1 >= i.max_attempts THEN 'failed'
                  WHEN i.status = 'created' AND executions.paused THEN 'paused'
                  ELSE i.status END,
    updated_at = $2,
    run_at = CASE WHEN i.status = 'created' AND executions.failure_count + 1 < i.max_attempts
                  THEN COALESCE(i.retry_at, $2) ELSE executions.run_at END,
    lease_expires_at = CASE WHEN i.status = 'created' AND executions.failure_count + 1 < i.max_attempts
                             AND NOT executions.paused AND i.retry_at > $2 THEN i.retry_at END,
    error_message = CASE WHEN i.status = 'created' AND executions.failure_count + 1 >= i.max_attempts
                         THEN i.exhausted_message
                         ELSE COALESCE(i.error_message, executions.error_message) END,
    error_node_id = COALESCE(i.error_node_id, executions.error_node_id),
    completed_at = CASE WHEN i.status = 'created' AND executions.failure_count + 1 < i.max_attempts
                        THEN executions.completed_at ELSE $2 END,
    failure_count = CASE WHEN i.status = 'created' THEN executions.failure_count + 1 ELSE executions.failure_count END,
    last_failure_reason = CASE
        WHEN i.status = 'created' THEN COALESCE(i.failure_reason, i.error_message, 'retry')
        ELSE COALESCE(i.failure_reason, executions.last_failure_reason) END,
    last_failure_at = CASE
        WHEN i.status = 'created' OR i.failure_reason IS NOT NULL THEN $2
        ELSE executions.last_failure_at END,
    processing_worker_id = CASE WHEN i.status = 'created' AND executions.failure_count + 1 < i.max_attempts
                                THEN NULL ELSE executions.processing_worker_id END,
    processing_started_at = CASE WHEN i.status = 'created' AND executions.failure_count + 1 < i.max_attempts
                                 THEN NULL ELSE executions.processing_started_at END,
    node_deadline_at = NULL
FROM (
    SELECT json_extract(x.value, '$.execution_id') AS execution_id,
           json_extract(x.value, '$.status') AS status,
           json_extract(x.value, '$.error_message') AS error_message,
           json_extract(x.value, '$.error_node_id') AS error_node_id,
           json_extract(x.value, '$.failure_reason') AS failure_reason,
           json_extract(x.value, '$.retry_at') AS retry_at,
           json_extract(x.value, '$.max_attempts') AS max_attempts,
           json_extract(x.value, '$.exhausted_message') AS exhausted_message
    FROM json_each($1) AS x
    WHERE json_extract(x.value, '$.execution_id') IN (SELECT value FROM json_each($3))
) AS i
WHERE executions.id = i.execution_id
RETURNING *
