-- The oldest $1 events readable now, for the janitor to cut a prefix of.
SELECT tx, seq, logged_at_ms FROM execution_events
WHERE tx < CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT)
ORDER BY tx, seq
LIMIT $1
