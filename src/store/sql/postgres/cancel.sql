-- cancelExecution, step 2 of 3: the executions step 1 locked (the JSON
-- array $5) become STOPPED at $3, their error message $4 (the reason): from
-- then on none of them is handed out or claimable. Returns those stopped.
UPDATE executions SET
    status = 'stopped',
    completed_at = $3,
    updated_at = $3,
    error_message = $4,
    lease_expires_at = NULL
WHERE id = ANY (ARRAY(SELECT jsonb_array_elements_text(CAST($5 AS jsonb))))
RETURNING id
