-- Admission to the slots of the keys of the JSON array $1 at $2, all at
-- once: for each key, its executions waiting for one (they hold a slot of
-- their run already, if it has a limit) in hand-out order (priority
-- descending, due time, id), as many as the key's limit leaves room for
-- beside its unfinished executions that hold a slot (counted through
-- executions_key_holders); every one when the key has no limit (removed
-- while they were admitted to their run's slots). Each key a read of its own,
-- through executions_key_waiters; the limits were locked by lock_keys, a
-- statement before. The admitted join the queue, or wait for their due time.
-- Rows another write holds are skipped, as in admit_runs. Returns those
-- admitted.
WITH keys AS (
    SELECT k.key,
           COALESCE(l.max_running, 1000000000)
           - (SELECT count(*) FROM executions h
              WHERE h.concurrency_key = k.key AND h.key_slot
                AND h.status NOT IN ('completed', 'failed', 'stopped')) AS room
    FROM (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)) AS key) k
    LEFT JOIN concurrency_limits l ON l.key = k.key
), picked AS (
    SELECT w.id FROM keys CROSS JOIN LATERAL (
        SELECT e.id FROM executions e
        WHERE e.concurrency_key = keys.key AND e.waiting = 2 AND e.status = 'created' AND NOT e.paused
        ORDER BY e.priority DESC, COALESCE(e.run_at, e.created_at), e.id
        LIMIT GREATEST(0, keys.room)
        FOR NO KEY UPDATE SKIP LOCKED
    ) w
)
UPDATE executions SET
    key_slot = TRUE,
    waiting = 0,
    lease_expires_at = CASE WHEN run_at > $2 THEN run_at END
WHERE id IN (SELECT id FROM picked)
RETURNING *
