-- resumeExecution, step 2 of 2: the executions step 1 locked (the JSON
-- array $4) are no longer marked paused (at $3); the PAUSED ones become
-- CREATED again: in the queue in their old order (priority, due time, id),
-- or waiting for their due time when it is still to come, or for a slot of
-- their run or key (under a lease that never lapses; the admission that
-- follows hands out what there is room for). (One set PAUSED by
-- updateExecutionStatus, unmarked, stays so.) Returns those changed.
UPDATE executions SET
    paused = FALSE,
    status = CASE WHEN status = 'paused' THEN 'created' ELSE status END,
    lease_expires_at = CASE
        WHEN status = 'paused' AND waiting > 0 THEN TIMESTAMPTZ '9999-12-31 23:59:59+00'
        WHEN status = 'paused' AND run_at > $3 THEN run_at
        WHEN status = 'paused' THEN NULL
        ELSE lease_expires_at END,
    updated_at = $3
WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text(CAST($4 AS jsonb))))
RETURNING id
