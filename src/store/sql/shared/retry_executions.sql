-- retryExecutions: the executions of run $1 (of owner $2 when $2 is not
-- null) in the statuses of slots $4-$9 (finished ones; a null slot matches
-- nothing) go back to the queue at $3: CREATED (PAUSED under a paused one),
-- completedAt cleared, due now, their failure count kept. One range of the
-- index of runs by status per status. A root with a flow deadline has it
-- looked at now, by the deadline timer, which counts its timeout again from
-- this retry. Returns those put back.
UPDATE executions SET
    status = CASE WHEN paused THEN 'paused' ELSE 'created' END,
    completed_at = NULL,
    updated_at = $3,
    run_at = $3,
    lease_expires_at = NULL,
    processing_worker_id = NULL,
    processing_started_at = NULL,
    deadline_at = CASE WHEN deadline_at IS NOT NULL THEN $3 END
WHERE root_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
  AND status IN ($4, $5, $6, $7, $8, $9)
RETURNING id
