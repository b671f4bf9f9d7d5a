-- Records ($1, $2) as the last position the janitor deleted.
UPDATE event_log_state SET pruned_tx = $1, pruned_seq = $2 WHERE id = 1
