-- The first statement of a commit group: a no-op write, so the transaction
-- holds the write lock (waiting for it under busy_timeout) before anything is
-- read. A plain BEGIN that reads first and writes later can fail with
-- SQLITE_BUSY without waiting.
UPDATE recovery_locks SET lock_id = lock_id WHERE 0 = 1
