-- createExecution(s): inserts the rows of the JSON array $1 (in input order)
-- at $2, or updates an existing id of the same owner (status, options,
-- integration, external events; a start or completion its status stamps is
-- kept when one is stored). started and completed say whether the status
-- stamps $2; run_at (null: at creation) and priority are kept from the first
-- create, and one not due yet waits for it (its lease its due time). A row that exists for another owner is not returned (the caller
-- then refuses the whole batch). An existing row under a paused execution
-- set CREATED is PAUSED. An existing root whose options set a flow timeout
-- is looked at by the deadline timer at once (deadline_at = $2), which works
-- out its deadline from its stored times and the new timeout; one whose
-- options no longer set a timeout loses its deadline. A new row waiting for
-- a slot of its run or key (waiting > 0) waits under a lease that never
-- lapses: the store admits it next, when there is room.
INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                        execution_depth, created_at, updated_at, started_at, completed_at,
                        options, integration, external_events, failure_count,
                        run_at, priority, lease_expires_at, paused, deadline_at,
                        concurrency_key, max_concurrency, waiting, node_timeout_ms)
SELECT x.id, x.flow_id, x.owner_id, x.root_execution_id, x.parent_execution_id, x.status,
       x.execution_depth, $2, $2,
       CASE WHEN x.started THEN $2 END,
       CASE WHEN x.completed THEN $2 END,
       x.options, x.integration, x.external_events, 0,
       x.run_at, x.priority,
       CASE WHEN x.status = 'created' AND x.waiting > 0 THEN TIMESTAMPTZ '9999-12-31 23:59:59+00'
            WHEN x.status = 'created' AND x.run_at > $2 THEN x.run_at END, x.paused,
       x.deadline_at, x.concurrency_key, x.max_concurrency, x.waiting, x.node_timeout_ms
FROM json_to_recordset(CAST($1 AS json)) AS x(
    ord INT, id TEXT, flow_id TEXT, owner_id TEXT, root_execution_id TEXT,
    parent_execution_id TEXT, status TEXT, execution_depth INT, started BOOLEAN,
    completed BOOLEAN, options JSONB, integration JSONB, external_events JSONB,
    run_at TIMESTAMPTZ, priority INT, paused BOOLEAN, deadline_at TIMESTAMPTZ,
    concurrency_key TEXT, max_concurrency INT, waiting INT, node_timeout_ms BIGINT)
ORDER BY x.ord
ON CONFLICT (id) DO UPDATE SET
    status = CASE WHEN executions.paused AND excluded.status = 'created' THEN 'paused'
                  ELSE excluded.status END, options = excluded.options,
    integration = excluded.integration, external_events = excluded.external_events,
    updated_at = excluded.updated_at,
    started_at = COALESCE(executions.started_at, excluded.started_at),
    completed_at = COALESCE(executions.completed_at, excluded.completed_at),
    deadline_at = CASE WHEN excluded.deadline_at IS NOT NULL THEN excluded.updated_at END
WHERE executions.owner_id = excluded.owner_id
RETURNING *
