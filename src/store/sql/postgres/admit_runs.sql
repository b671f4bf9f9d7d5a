-- Admission to the slots of the runs of the JSON array $1 (their roots' ids)
-- at $2, all at once: for each run that has a limit (its root's
-- max_concurrency), its waiting executions in hand-out order (priority
-- descending, due time, id), as many as the limit leaves room for beside its
-- unfinished executions that hold a slot (counted through
-- executions_run_holders: at most the limit, so the count costs what the
-- limit does, not the run); each run a read of its own (the LATERAL), through
-- executions_run_waiters. The roots were locked by lock_runs, a statement
-- before: this one's snapshot sees every admission to them that committed.
-- Each admitted holds a slot of its run; one whose key has a limit waits next
-- for a slot of its key (its lease that never lapses kept), the others join
-- the queue, or wait for their due time. A row another write holds is
-- skipped (the janitor's round admits it later); NO KEY UPDATE: a child's
-- insert, which shares its parent's row, does not make it skipped. Returns
-- those admitted.
WITH runs AS (
    SELECT r.id,
           r.max_concurrency - (SELECT count(*) FROM executions h
                                WHERE h.root_execution_id = r.id AND h.run_slot
                                  AND h.status NOT IN ('completed', 'failed', 'stopped')) AS room
    FROM executions r
    WHERE r.id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
      AND r.max_concurrency IS NOT NULL
), picked AS (
    SELECT w.id FROM runs CROSS JOIN LATERAL (
        SELECT e.id FROM executions e
        WHERE e.root_execution_id = runs.id AND e.waiting = 1 AND e.status = 'created' AND NOT e.paused
        ORDER BY e.priority DESC, COALESCE(e.run_at, e.created_at), e.id
        LIMIT GREATEST(0, runs.room)
        FOR NO KEY UPDATE SKIP LOCKED
    ) w
)
UPDATE executions SET
    run_slot = TRUE,
    waiting = CASE WHEN concurrency_key IN (SELECT key FROM concurrency_limits) THEN 2 ELSE 0 END,
    lease_expires_at = CASE
        WHEN concurrency_key IN (SELECT key FROM concurrency_limits) THEN lease_expires_at
        WHEN run_at > $2 THEN run_at END
WHERE id IN (SELECT id FROM picked)
RETURNING *
