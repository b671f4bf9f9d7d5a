-- Admission to the slots of key $1 at $2: its executions waiting for one
-- (they hold a slot of their run already, if it has a limit) in hand-out
-- order (priority descending, due time, id), as many as the key's limit
-- leaves room for beside its unfinished executions that hold a slot
-- (counted through executions_key_holders); every one when the key has no
-- limit (removed while they were admitted to their run's slots). The admitted join the queue, or
-- wait for their due time. (One writer, as in admit_run.) Returns those
-- admitted.
UPDATE executions SET
    key_slot = TRUE,
    waiting = 0,
    lease_expires_at = CASE WHEN run_at > $2 THEN run_at END
WHERE id IN (
    SELECT id FROM executions
    WHERE concurrency_key = $1 AND waiting = 2 AND status = 'created' AND NOT paused
    ORDER BY priority DESC, COALESCE(run_at, created_at), id
    LIMIT max(0, COALESCE((SELECT max_running FROM concurrency_limits WHERE key = $1), 1000000000)
                      - (SELECT count(*) FROM executions
                         WHERE concurrency_key = $1 AND key_slot
                           AND status NOT IN ('completed', 'failed', 'stopped')))
)
RETURNING *
