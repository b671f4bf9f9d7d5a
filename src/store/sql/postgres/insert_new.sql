-- createExecution(s), first try: every row new. The inputs travel as one
-- array per column ($1-$10, the start and completion times their status
-- stamps in $12 and $13, their due time (null: at creation) and priority in
-- $14 and $15, whether it is under a paused one in $16, a root's flow
-- deadline in $17, its concurrency key, run limit (0: none) and what it
-- waits for (0: nothing) in $18-$20, its run's node timeout (0: none) in
-- $21; element i of each
-- is input i) and are inserted in input order
-- at $11. One not due yet waits for it: its lease is its due time. One
-- waiting for a slot of its run or key waits under a lease that never lapses
-- (the store admits it next, when there is room). An id that exists fails the statement with a unique
-- violation (nothing committed), and the batch goes through upsert_many
-- instead. Against that upsert it skips the conflict probe before each row,
-- the parse of one JSON document of the whole batch, and sending every column
-- back: the caller knows what it wrote, except the JSON columns as PostgreSQL
-- stores them (jsonb orders keys), which come back with the id.
INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                        execution_depth, created_at, updated_at, started_at, completed_at,
                        options, integration, external_events, failure_count,
                        run_at, priority, lease_expires_at, paused, deadline_at,
                        concurrency_key, max_concurrency, waiting, node_timeout_ms)
SELECT x.id, x.flow_id, x.owner_id, x.root_execution_id, x.parent_execution_id, x.status,
       x.execution_depth, $11, $11, x.started_at, x.completed_at,
       x.options, x.integration, x.external_events, 0,
       x.run_at, x.priority,
       CASE WHEN x.status = 'created' AND x.waiting > 0 THEN TIMESTAMPTZ '9999-12-31 23:59:59+00'
            WHEN x.status = 'created' AND x.run_at > $11 THEN x.run_at END, x.paused,
       x.deadline_at, x.concurrency_key, NULLIF(x.max_concurrency, 0), x.waiting,
       NULLIF(x.node_timeout_ms, 0)
FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS text[]), CAST($4 AS text[]),
            CAST($5 AS text[]), CAST($6 AS text[]), CAST($7 AS int[]), CAST($8 AS jsonb[]),
            CAST($9 AS jsonb[]), CAST($10 AS jsonb[]), CAST($12 AS timestamptz[]),
            CAST($13 AS timestamptz[]), CAST($14 AS timestamptz[]), CAST($15 AS int[]),
            CAST($16 AS boolean[]), CAST($17 AS timestamptz[]), CAST($18 AS text[]),
            CAST($19 AS int[]), CAST($20 AS int[]), CAST($21 AS bigint[]))
     WITH ORDINALITY AS x(id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                          execution_depth, options, integration, external_events,
                          started_at, completed_at, run_at, priority, paused, deadline_at,
                          concurrency_key, max_concurrency, waiting, node_timeout_ms, ord)
ORDER BY x.ord
RETURNING id, options, integration, external_events
