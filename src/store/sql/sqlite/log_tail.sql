-- Up to $3 events after ($1, $2). One writer at a time: every committed
-- event is readable, in commit order.
SELECT e.tx, e.seq, e.kind, e.execution_id, e.root_execution_id, e.owner_id, 0 AS pending
FROM execution_events e
WHERE e.tx = $1 AND e.seq > $2
ORDER BY e.seq
LIMIT $3
