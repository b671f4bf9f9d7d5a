-- One pruner of the event log at a time across the servers of a database:
-- the others skip the round (a transaction-scoped advisory lock; the key is
-- arbitrary).
SELECT pg_try_advisory_xact_lock(7274851023) AS locked
