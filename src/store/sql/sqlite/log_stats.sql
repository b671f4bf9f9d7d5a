-- How big and how old the event log is (three index reads).
SELECT (SELECT MIN(seq) FROM execution_events) AS first_seq,
       (SELECT logged_at_ms FROM execution_events ORDER BY seq LIMIT 1) AS first_at,
       (SELECT MAX(seq) FROM execution_events) AS last_seq
