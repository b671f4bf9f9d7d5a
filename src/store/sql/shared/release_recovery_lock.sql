-- releaseRecoveryLock: frees lease $1, only for its holder $2.
DELETE FROM recovery_locks WHERE lock_id = $1 AND holder_id = $2
