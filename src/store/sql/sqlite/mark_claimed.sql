-- claimExecution and claimNextExecutions, step 3 of 3: the executions whose
-- claims step 2 took (the JSON array $8) are processed by worker $1 since their
-- claim began, updated at $2, leased until $3.
UPDATE executions SET
    processing_worker_id = $1,
    processing_started_at = (SELECT claimed_at FROM execution_claims c WHERE c.execution_id = executions.id),
    updated_at = $2,
    lease_expires_at = (SELECT expires_at FROM execution_claims c WHERE c.execution_id = executions.id),
    node_deadline_at = CASE WHEN node_timeout_ms IS NOT NULL THEN strftime('%Y-%m-%dT%H:%M:%f+00:00',
        julianday((SELECT claimed_at FROM execution_claims c WHERE c.execution_id = executions.id))
        + node_timeout_ms / 86400000.0) END
WHERE id IN (SELECT value FROM json_each($8))
RETURNING *
