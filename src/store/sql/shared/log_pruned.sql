-- The last position the janitor deleted.
SELECT pruned_tx AS tx, pruned_seq AS seq FROM event_log_state WHERE id = 1
