-- getExecutionsNeedingRecovery, oldest first, at most $2, of owner $3 when
-- $3 is not null; due ones only (due by $1: scheduled and waiting ones are
-- not stuck, they wait):
--   1. CREATED, failure_count 0, without a live claim (at $1);
--   2. RUNNING without a live claim (no row, released, expired, or active
--      past expiry);
--   3. CREATED with failure_count > 0 whose retry is due: the queue rule
--      (the retry that would reach its maxAttempts ended it FAILED, so a
--      CREATED one has attempts left).
-- One ordered read per kind of candidate, each through its own partial index,
-- merged: the fresh queue (CREATED without a lease: due) in queue order,
-- stopping at $2 matches; then every CREATED row with a lease (live, lapsed and not yet put
-- back by a pull, or waiting for its due time; not those waiting for a slot
-- of their run or key, whose lease never lapses: they are not stuck, and the
-- range of the index of leases stops before them) and every RUNNING row. The
-- cost follows the answer and the leased and running work, not the table.
-- (Each part is a subquery of its own: SQLite allows ORDER BY and LIMIT only
-- at the end of a whole UNION.)
SELECT * FROM (
    SELECT * FROM (
        SELECT e.* FROM executions e
        WHERE e.status = 'created' AND e.lease_expires_at IS NULL
          AND (e.failure_count > 0 OR NOT EXISTS (
                    SELECT 1 FROM execution_claims c
                    WHERE c.execution_id = e.id AND c.status = 'active' AND c.expires_at >= $1))
          AND ($3 IS NULL OR e.owner_id = $3)
        ORDER BY e.priority DESC, COALESCE(e.run_at, e.created_at), e.id LIMIT $2) fresh
    UNION ALL
    SELECT * FROM (
        SELECT e.* FROM executions e
        WHERE e.status = 'created' AND e.lease_expires_at IS NOT NULL
          AND e.lease_expires_at < '9999-12-31T23:59:59+00:00' AND e.waiting = 0
          AND COALESCE(e.run_at, e.created_at) <= $1
          AND (e.failure_count > 0 OR NOT EXISTS (
                    SELECT 1 FROM execution_claims c
                    WHERE c.execution_id = e.id AND c.status = 'active' AND c.expires_at >= $1))
          AND ($3 IS NULL OR e.owner_id = $3)
        ORDER BY e.created_at, e.id LIMIT $2) leased
    UNION ALL
    SELECT * FROM (
        SELECT e.* FROM executions e
        WHERE e.status = 'running'
          AND NOT EXISTS (
                SELECT 1 FROM execution_claims c
                WHERE c.execution_id = e.id AND c.status = 'active' AND c.expires_at >= $1)
          AND ($3 IS NULL OR e.owner_id = $3)
        ORDER BY e.created_at, e.id LIMIT $2) running
) r
ORDER BY r.created_at, r.id
LIMIT $2
