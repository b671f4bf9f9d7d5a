-- How big and how old the event log is (three index reads).
SELECT (SELECT seq FROM execution_events ORDER BY tx, seq LIMIT 1) AS first_seq,
       (SELECT logged_at_ms FROM execution_events ORDER BY tx, seq LIMIT 1) AS first_at,
       (SELECT seq FROM execution_events ORDER BY tx DESC, seq DESC LIMIT 1) AS last_seq
