-- finishExecution(s): finishes each item of $1 whose worker holds a live
-- claim (at $2): its final status, or back to CREATED to be retried (the
-- failure counted; due again at the item's retry_at, which the store
-- computed from the retry policy), or FAILED when that retry would reach the
-- item's max_attempts (errorMessage: its exhausted_message); a retry under a
-- paused execution is PAUSED. A finished execution (a cancelled one) is not
-- finished again: its holder is refused. The execution
-- rows first, locked in id order (as every claim
-- path locks the execution before its claim), then the claims released, then
-- the executions written; an item without a live claim matches nothing.
-- An item at_node_deadline (the deadline timer's) needs the claim to have
-- been live at the execution's node deadline, not now: the claim is capped
-- there, and lapsed a moment before the timer came.
--
-- The claims are found by primary key, one probe per item: their state is
-- tested inside a CASE, which no index serves. (As plain conditions, the
-- planner read every live claim through the index of live claims by expiry,
-- and the entries it still holds for claims released since the last vacuum:
-- 165,200 entries for a batch of 50 in a profiled drain.)
--
-- (SELECT count(*) FROM target) >= 0 is always true: it makes PostgreSQL read
-- target whole, taking every lock, before it touches the first claim (a
-- one-time filter). As execution_id IN (SELECT id FROM target) it compared
-- each claim with every locked row: 499,500 comparisons for 1,000 items.
WITH input AS (
    SELECT * FROM jsonb_to_recordset(CAST($1 AS jsonb)) AS x(
        execution_id TEXT, worker_id TEXT, status TEXT, error_message TEXT,
        error_node_id TEXT, failure_reason TEXT, retry_at TIMESTAMPTZ, max_attempts INT,
        exhausted_message TEXT, at_node_deadline BOOLEAN)
), target AS (
    SELECT e.id FROM executions e WHERE e.id IN (SELECT execution_id FROM input)
    ORDER BY e.id FOR UPDATE
), held AS (
    UPDATE execution_claims c SET status = 'released'
    FROM input i
    WHERE c.execution_id = i.execution_id AND c.worker_id = i.worker_id
      AND CASE WHEN c.status <> 'active' THEN false
               WHEN i.at_node_deadline THEN c.expires_at >= (
                   SELECT n.node_deadline_at FROM executions n WHERE n.id = c.execution_id)
               ELSE c.expires_at >= $2 END
      AND (SELECT count(*) FROM target) >= 0
      AND EXISTS (SELECT 1 FROM executions t
                  WHERE t.id = c.execution_id AND t.status NOT IN ('completed', 'failed', 'stopped'))
    RETURNING c.execution_id
)
UPDATE executions e SET
    status = CASE WHEN i.status = 'created' AND e.failure_count + 1 >= i.max_attempts THEN 'failed'
                  WHEN i.status = 'created' AND e.paused THEN 'paused'
                  ELSE i.status END,
    updated_at = $2,
    run_at = CASE WHEN i.status = 'created' AND e.failure_count + 1 < i.max_attempts
                  THEN COALESCE(i.retry_at, $2) ELSE e.run_at END,
    lease_expires_at = CASE WHEN i.status = 'created' AND e.failure_count + 1 < i.max_attempts
                             AND NOT e.paused AND i.retry_at > $2 THEN i.retry_at END,
    error_message = CASE WHEN i.status = 'created' AND e.failure_count + 1 >= i.max_attempts
                         THEN i.exhausted_message
                         ELSE COALESCE(i.error_message, e.error_message) END,
    error_node_id = COALESCE(i.error_node_id, e.error_node_id),
    completed_at = CASE WHEN i.status = 'created' AND e.failure_count + 1 < i.max_attempts
                        THEN e.completed_at ELSE $2 END,
    failure_count = CASE WHEN i.status = 'created' THEN e.failure_count + 1 ELSE e.failure_count END,
    last_failure_reason = CASE
        WHEN i.status = 'created' THEN COALESCE(i.failure_reason, i.error_message, 'retry')
        ELSE COALESCE(i.failure_reason, e.last_failure_reason) END,
    last_failure_at = CASE
        WHEN i.status = 'created' OR i.failure_reason IS NOT NULL THEN $2
        ELSE e.last_failure_at END,
    processing_worker_id = CASE WHEN i.status = 'created' AND e.failure_count + 1 < i.max_attempts
                                THEN NULL ELSE e.processing_worker_id END,
    processing_started_at = CASE WHEN i.status = 'created' AND e.failure_count + 1 < i.max_attempts
                                 THEN NULL ELSE e.processing_started_at END,
    node_deadline_at = NULL
FROM input i, held h
WHERE e.id = i.execution_id AND h.execution_id = e.id
RETURNING e.*
