-- The positions of the committed events of root $3 after ($1, $2).
SELECT tx, seq FROM execution_events
WHERE root_execution_id = $3 AND tx = $1 AND seq > $2
