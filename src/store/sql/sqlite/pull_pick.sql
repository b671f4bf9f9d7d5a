-- claimNextExecutions, step 1 of 3: the first {limit} executions of the
-- fresh queue (CREATED, no lease: due) in hand-out order (priority
-- descending, due time, id), through its partial index. Every write runs
-- in the commit group's transaction, which holds the one write lock of the
-- database: nobody else picks the same rows before step 2 claims them.
SELECT id FROM executions
WHERE status = 'created' AND lease_expires_at IS NULL
ORDER BY priority DESC, COALESCE(run_at, created_at), id
LIMIT {limit}
