-- Deletes the event log up to and including ($1, $2).
DELETE FROM execution_events WHERE tx = $1 AND seq <= $2
