-- The primary WAL position written so far (the watcher of standbys samples
-- it to tell how far behind each standby is).
SELECT CAST(pg_current_wal_lsn() - CAST('0/0' AS pg_lsn) AS BIGINT) AS lsn
