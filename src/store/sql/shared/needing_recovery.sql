-- getExecutionsNeedingRecovery, oldest first, at most $4, of owner $5 when
-- $5 is not null:
--   1. CREATED, failure_count 0, without a live claim (at $1);
--   2. RUNNING without a live claim (no row, released, expired, or active
--      past expiry);
--   3. CREATED with 0 < failure_count < $3 whose last failure is older than $2.
-- One ordered read per kind of candidate, each through its own partial index,
-- merged: the fresh queue (CREATED without a lease) in queue order, stopping
-- at $4 matches; then every CREATED row with a lease (live, or lapsed and not
-- yet put back by a pull) and every RUNNING row. The cost follows the answer
-- and the leased and running work, not the table. (Each part is a subquery of
-- its own: SQLite allows ORDER BY and LIMIT only at the end of a whole UNION.)
SELECT * FROM (
    SELECT * FROM (
        SELECT e.* FROM executions e
        WHERE e.status = 'created' AND e.lease_expires_at IS NULL
          AND ((e.failure_count = 0 AND NOT EXISTS (
                    SELECT 1 FROM execution_claims c
                    WHERE c.execution_id = e.id AND c.status = 'active' AND c.expires_at >= $1))
               OR (e.failure_count > 0 AND e.failure_count < $3 AND e.last_failure_at < $2))
          AND ($5 IS NULL OR e.owner_id = $5)
        ORDER BY e.created_at, e.id LIMIT $4) fresh
    UNION ALL
    SELECT * FROM (
        SELECT e.* FROM executions e
        WHERE e.status = 'created' AND e.lease_expires_at IS NOT NULL
          AND ((e.failure_count = 0 AND NOT EXISTS (
                    SELECT 1 FROM execution_claims c
                    WHERE c.execution_id = e.id AND c.status = 'active' AND c.expires_at >= $1))
               OR (e.failure_count > 0 AND e.failure_count < $3 AND e.last_failure_at < $2))
          AND ($5 IS NULL OR e.owner_id = $5)
        ORDER BY e.created_at, e.id LIMIT $4) leased
    UNION ALL
    SELECT * FROM (
        SELECT e.* FROM executions e
        WHERE e.status = 'running'
          AND NOT EXISTS (
                SELECT 1 FROM execution_claims c
                WHERE c.execution_id = e.id AND c.status = 'active' AND c.expires_at >= $1)
          AND ($5 IS NULL OR e.owner_id = $5)
        ORDER BY e.created_at, e.id LIMIT $4) running
) r
ORDER BY r.created_at, r.id
LIMIT $4
