-- setConcurrencyLimit(limit: null), after the limit is removed: the
-- unfinished executions of key $1 that waited for one of its slots wait no
-- more (at $2): the CREATED ones join the queue, or wait for their due time;
-- the PAUSED ones stay so. Read through the index of a key's unfinished
-- executions. Returns those that joined the queue.
UPDATE executions SET
    waiting = 0,
    lease_expires_at = CASE
        WHEN status = 'created' AND run_at > $2 THEN run_at
        WHEN status = 'created' THEN NULL
        ELSE lease_expires_at END
WHERE concurrency_key = $1 AND waiting = 2 AND status NOT IN ('completed', 'failed', 'stopped')
RETURNING *
