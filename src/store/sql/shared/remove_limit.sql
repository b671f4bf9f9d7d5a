-- setConcurrencyLimit(limit: null): key $1 has no limit from now on.
DELETE FROM concurrency_limits WHERE key = $1
