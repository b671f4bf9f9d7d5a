-- After a commit: every byte of its WAL is at or before this position (the
-- consistency token a mutation answers with).
SELECT CAST(pg_current_wal_insert_lsn() - CAST('0/0' AS pg_lsn) AS BIGINT) AS lsn
