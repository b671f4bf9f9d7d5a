-- A standby: how far it has replayed the WAL, and whether it still is one.
SELECT CAST(pg_last_wal_replay_lsn() - CAST('0/0' AS pg_lsn) AS BIGINT) AS lsn,
       pg_is_in_recovery() AS standby
