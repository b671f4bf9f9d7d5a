-- concurrencyLimits: every key's limit (only key $1's when $1 is not null),
-- in key order, with how many of its executions hold one of its slots now
-- (unfinished: claimed, or admitted and next in the queue), counted through
-- executions_key_holders.
SELECT l.key, l.max_running,
       (SELECT count(*) FROM executions e
        WHERE e.concurrency_key = l.key AND e.key_slot
          AND e.status NOT IN ('completed', 'failed', 'stopped')) AS running
FROM concurrency_limits l
WHERE $1 IS NULL OR l.key = $1
ORDER BY l.key
