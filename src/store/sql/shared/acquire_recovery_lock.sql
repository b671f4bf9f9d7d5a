-- tryAcquireRecoveryLock: lease $1 for holder $2 at $3 until $4, when it is
-- free, expired, or already the holder's (which renews it and keeps its start).
INSERT INTO recovery_locks (lock_id, holder_id, acquired_at, expires_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (lock_id) DO UPDATE SET
    acquired_at = CASE WHEN recovery_locks.holder_id = excluded.holder_id
                        AND recovery_locks.expires_at >= excluded.acquired_at
                       THEN recovery_locks.acquired_at ELSE excluded.acquired_at END,
    holder_id = excluded.holder_id,
    expires_at = excluded.expires_at
WHERE recovery_locks.expires_at < excluded.acquired_at
   OR recovery_locks.holder_id = excluded.holder_id
RETURNING lock_id
