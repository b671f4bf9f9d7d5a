-- recordRecovery: what was done about execution $1, at $2, by worker $3.
INSERT INTO execution_recovery (execution_id, recovered_at, recovered_by_worker, recovery_reason,
                                previous_status, previous_worker_id)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *
