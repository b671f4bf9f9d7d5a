-- The head of the event log: a position after every event. (Never below the
-- prune mark: after the janitor emptied the log, MAX(seq) alone would fall
-- back to 0 and every cursor from it would be expired.)
SELECT 0 AS tx,
       MAX(COALESCE((SELECT MAX(seq) FROM execution_events), 0),
           (SELECT pruned_seq FROM event_log_state WHERE id = 1)) AS seq
