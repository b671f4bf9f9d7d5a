-- Up to $3 events after ($1, $2), readable now (written by a transaction
-- older than every one still running), with whether committed events wait
-- behind a running transaction (read again soon).
SELECT e.tx, e.seq, e.kind, e.execution_id, e.root_execution_id, e.owner_id,
       EXISTS (SELECT 1 FROM execution_events p WHERE p.tx >= v.xmin) AS pending
FROM (SELECT CAST(CAST(pg_snapshot_xmin(pg_current_snapshot()) AS TEXT) AS BIGINT) AS xmin) v
LEFT JOIN LATERAL (
    SELECT * FROM execution_events
    WHERE (tx, seq) > ($1, $2) AND tx < v.xmin
    ORDER BY tx, seq
    LIMIT $3
) e ON true
ORDER BY e.tx, e.seq
