-- setConcurrencyLimit: key $1's limit becomes $2 (set, or changed).
INSERT INTO concurrency_limits (key, max_running) VALUES ($1, $2)
ON CONFLICT (key) DO UPDATE SET max_running = excluded.max_running
