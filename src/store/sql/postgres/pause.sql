-- pauseExecution, step 2 of 2: the executions step 1 locked (the JSON array
-- $4) are marked paused at $3 (a finished one put back by retryExecutions,
-- or a child created under one, waits PAUSED too); the queued ones among
-- them become PAUSED and leave the queue; held ones run on and finish
-- normally. Returns those changed.
UPDATE executions SET
    paused = TRUE,
    status = CASE WHEN status = 'created' AND (lease_expires_at IS NULL OR lease_expires_at = run_at OR lease_expires_at < $3 OR waiting > 0) THEN 'paused' ELSE status END,
    lease_expires_at = CASE WHEN status = 'created' AND (lease_expires_at IS NULL OR lease_expires_at = run_at OR lease_expires_at < $3 OR waiting > 0) THEN NULL ELSE lease_expires_at END,
    updated_at = $3
WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text(CAST($4 AS jsonb))))
RETURNING id
