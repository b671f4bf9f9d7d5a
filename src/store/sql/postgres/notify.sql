-- Wakes the other processes on the same database: channel $1, payload $2.
SELECT pg_notify($1, $2)
