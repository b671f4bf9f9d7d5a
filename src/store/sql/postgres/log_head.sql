-- The head of the event log: a position after every event readable now (the
-- oldest transaction still running; see the event log module).
SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) AS tx,
       CAST(0 AS BIGINT) AS seq
