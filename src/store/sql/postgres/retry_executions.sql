-- retryExecutions: the executions of run $1 (of owner $2 when $2 is not
-- null) in the statuses of slots $4-$9 (finished ones; a null slot matches
-- nothing) go back to the queue at $3: CREATED (PAUSED under a paused one),
-- completedAt cleared, due now, their failure count kept. One range of the
-- index of runs by status per status. A root with a flow deadline has it
-- looked at now, by the deadline timer, which counts its timeout again from
-- this retry. One limited by its run or key gives up the slots it held and
-- waits for them again (the admission that follows hands out what there is
-- room for). Returns those put back.
UPDATE executions SET
    status = CASE WHEN paused THEN 'paused' ELSE 'created' END,
    completed_at = NULL,
    updated_at = $3,
    run_at = $3,
    waiting = CASE
        WHEN max_concurrency IS NOT NULL AND parent_execution_id IS NOT NULL THEN 1
        WHEN concurrency_key IN (SELECT key FROM concurrency_limits) THEN 2
        ELSE 0 END,
    run_slot = FALSE,
    key_slot = FALSE,
    lease_expires_at = CASE
        WHEN paused THEN NULL
        WHEN max_concurrency IS NOT NULL AND parent_execution_id IS NOT NULL THEN TIMESTAMPTZ '9999-12-31 23:59:59+00'
        WHEN concurrency_key IN (SELECT key FROM concurrency_limits) THEN TIMESTAMPTZ '9999-12-31 23:59:59+00'
        END,
    processing_worker_id = NULL,
    processing_started_at = NULL,
    deadline_at = CASE WHEN deadline_at IS NOT NULL THEN $3 END
WHERE root_execution_id = $1 AND ($2 IS NULL OR owner_id = $2)
  AND status IN ($4, $5, $6, $7, $8, $9)
RETURNING id
