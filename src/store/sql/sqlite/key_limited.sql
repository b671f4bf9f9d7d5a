-- setConcurrencyLimit, before the limit is stored: the unfinished executions
-- of key $1 that did not count against it (made while the key had no limit)
-- do now. Those held or running hold a slot; the queued ones (not held: in
-- the queue, waiting for their due time, or PAUSED) wait for one, the
-- CREATED ones under a lease that never lapses. The admission that follows
-- hands out what the limit leaves room for. Read through the index of a
-- key's unfinished executions.
UPDATE executions SET
    waiting = CASE WHEN status IN ('created', 'paused')
                        AND (lease_expires_at IS NULL OR COALESCE(lease_expires_at = run_at, FALSE)) THEN 2 ELSE 0 END,
    key_slot = NOT (status IN ('created', 'paused')
                    AND (lease_expires_at IS NULL OR COALESCE(lease_expires_at = run_at, FALSE))),
    lease_expires_at = CASE WHEN status = 'created'
                                 AND (lease_expires_at IS NULL OR COALESCE(lease_expires_at = run_at, FALSE))
                            THEN '9999-12-31T23:59:59+00:00' ELSE lease_expires_at END
WHERE concurrency_key = $1 AND status NOT IN ('completed', 'failed', 'stopped')
  AND waiting = 0 AND NOT key_slot
