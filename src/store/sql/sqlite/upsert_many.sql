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
-- lapses: the store admits it next, when there is room. (WHERE true: an INSERT from a SELECT needs
-- it before ON CONFLICT.)
INSERT INTO executions (id, flow_id, owner_id, root_execution_id, parent_execution_id, status,
                        execution_depth, created_at, updated_at, started_at, completed_at,
                        options, integration, external_events, failure_count,
                        run_at, priority, lease_expires_at, paused, deadline_at,
                        concurrency_key, max_concurrency, waiting, node_timeout_ms)
SELECT json_extract(x.value, '$.id'), json_extract(x.value, '$.flow_id'),
       json_extract(x.value, '$.owner_id'), json_extract(x.value, '$.root_execution_id'),
       json_extract(x.value, '$.parent_execution_id'), json_extract(x.value, '$.status'),
       json_extract(x.value, '$.execution_depth'), $2, $2,
       CASE WHEN json_extract(x.value, '$.started') THEN $2 END,
       CASE WHEN json_extract(x.value, '$.completed') THEN $2 END,
       CASE WHEN json_type(x.value, '$.options') IN ('null') THEN NULL ELSE x.value -> '$.options' END,
       CASE WHEN json_type(x.value, '$.integration') IN ('null') THEN NULL ELSE x.value -> '$.integration' END,
       CASE WHEN json_type(x.value, '$.external_events') IN ('null') THEN NULL ELSE x.value -> '$.external_events' END,
       0,
       json_extract(x.value, '$.run_at'), json_extract(x.value, '$.priority'),
       CASE WHEN json_extract(x.value, '$.status') = 'created' AND json_extract(x.value, '$.waiting') > 0
            THEN '9999-12-31T23:59:59+00:00'
            WHEN json_extract(x.value, '$.status') = 'created' AND json_extract(x.value, '$.run_at') > $2
            THEN json_extract(x.value, '$.run_at') END,
       json_extract(x.value, '$.paused'),
       json_extract(x.value, '$.deadline_at'),
       json_extract(x.value, '$.concurrency_key'), json_extract(x.value, '$.max_concurrency'),
       json_extract(x.value, '$.waiting'), json_extract(x.value, '$.node_timeout_ms')
FROM json_each($1) AS x
WHERE true
ORDER BY x.key
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
