-- claimExecution, step 1 of 3: execution $4, unless it is terminal or
-- waits PAUSED under a paused execution. Every
-- write runs in the commit group's transaction, which holds the one write
-- lock of the database: nobody else claims it between these steps.
SELECT id FROM executions
WHERE id = $4 AND status NOT IN ('completed', 'failed', 'stopped')
  AND NOT (paused AND status = 'paused')
