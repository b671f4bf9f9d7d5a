-- Deletes the event log up to and including ($1, $2).
DELETE FROM execution_events WHERE (tx, seq) <= ($1, $2)
