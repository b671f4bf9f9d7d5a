-- updateFailureInfo: execution $4 (of owner $5 when $5 is not null) failed
-- $1 times, the last for reason $2, at $3. When that counts a new failure of
-- a CREATED execution (recovery putting it back), $6 is when it is due again
-- (it waits until then: its lease its due time); or, when it ran out of
-- attempts, $7 ends it (FAILED, $8 its error message, completed at $3).
-- Put back under a paused execution, it waits PAUSED instead.
UPDATE executions SET
    failure_count = $1,
    last_failure_reason = $2,
    last_failure_at = $3,
    updated_at = $3,
    status = CASE WHEN $7 IS NOT NULL THEN $7
                  WHEN paused AND status = 'created' AND $6 IS NOT NULL THEN 'paused'
                  ELSE status END,
    error_message = COALESCE($8, error_message),
    completed_at = CASE WHEN $7 IS NULL THEN completed_at ELSE $3 END,
    run_at = COALESCE($6, run_at),
    lease_expires_at = CASE
        WHEN $7 IS NOT NULL THEN NULL
        WHEN paused AND status = 'created' AND $6 IS NOT NULL THEN NULL
        WHEN status <> 'created' THEN lease_expires_at
        WHEN lease_expires_at IS NOT NULL AND lease_expires_at <> COALESCE(run_at, created_at)
            THEN lease_expires_at
        WHEN COALESCE($6, run_at) > $3 THEN COALESCE($6, run_at)
        END
WHERE id = $4 AND ($5 IS NULL OR owner_id = $5)
RETURNING *
