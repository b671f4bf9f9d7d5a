-- Admission to the slots of run $1 at $2: its waiting executions in hand-out
-- order (priority descending, due time, id), as many as its limit (its
-- root's max_concurrency) leaves room for beside the unfinished executions
-- that hold a slot (counted through executions_run_holders: at most the
-- limit, so the count costs what the limit does, not the run). Each admitted
-- holds a slot of the run; one whose key has a limit waits next for a slot of
-- its key (its lease that never lapses kept), the others join the queue, or
-- wait for their due time. A row another write holds is skipped: that write
-- (a cancel, a pause) takes it out of the waiting. NO KEY UPDATE: a child's
-- insert, which shares its parent's row, does not make it skipped. Returns
-- those admitted.
UPDATE executions SET
    run_slot = TRUE,
    waiting = CASE WHEN concurrency_key IN (SELECT key FROM concurrency_limits) THEN 2 ELSE 0 END,
    lease_expires_at = CASE
        WHEN concurrency_key IN (SELECT key FROM concurrency_limits) THEN lease_expires_at
        WHEN run_at > $2 THEN run_at END
WHERE id IN (
    SELECT id FROM executions
    WHERE root_execution_id = $1 AND waiting = 1 AND status = 'created' AND NOT paused
    ORDER BY priority DESC, COALESCE(run_at, created_at), id
    LIMIT GREATEST(0, COALESCE((SELECT max_concurrency FROM executions WHERE id = $1), 0)
                      - (SELECT count(*) FROM executions
                         WHERE root_execution_id = $1 AND run_slot
                           AND status NOT IN ('completed', 'failed', 'stopped')))
    FOR NO KEY UPDATE SKIP LOCKED
)
RETURNING *
