-- The oldest $1 events, for the janitor to cut a prefix of.
SELECT tx, seq, logged_at_ms FROM execution_events ORDER BY tx, seq LIMIT $1
