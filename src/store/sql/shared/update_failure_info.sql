-- updateFailureInfo: execution $4 (of owner $5 when $5 is not null) failed
-- $1 times, the last for reason $2, at $3.
UPDATE executions SET
    failure_count = $1,
    last_failure_reason = $2,
    last_failure_at = $3,
    updated_at = $3
WHERE id = $4 AND ($5 IS NULL OR owner_id = $5)
RETURNING *
