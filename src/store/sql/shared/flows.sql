-- flows: the newest run of each flow, newest first, after the cursor ($1, $2)
-- = (last run time, flow id) when $3 is 1, at most $4 rows. ($5, the owner of
-- owner_flows, is not used.)
--
-- The walk visits the distinct flow ids of roots one index probe each (a skip
-- scan over the index of roots by flow and status, starting from the empty
-- id, which sorts before any other), and finds each flow newest run with one
-- probe per status: roots are indexed by flow, status and time (there is no
-- index of roots by flow and time alone: one index entry less per write of a
-- root), so the newest run is the newest of the newest in each status. The
-- cost follows the number of flows, never the number of executions or runs.
WITH RECURSIVE flows(flow_id) AS (
    SELECT CAST('' AS TEXT)
    UNION ALL
    SELECT (SELECT e.flow_id FROM executions e
            WHERE e.execution_depth = 0 AND e.flow_id > flows.flow_id
            ORDER BY e.flow_id LIMIT 1)
    FROM flows WHERE flows.flow_id IS NOT NULL
), newest AS (
    SELECT flows.flow_id, (SELECT n.id FROM (
        SELECT * FROM (SELECT e.id, e.created_at FROM executions e
            WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.status = 'created'
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) s1
        UNION ALL
        SELECT * FROM (SELECT e.id, e.created_at FROM executions e
            WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.status = 'running'
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) s2
        UNION ALL
        SELECT * FROM (SELECT e.id, e.created_at FROM executions e
            WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.status = 'paused'
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) s3
        UNION ALL
        SELECT * FROM (SELECT e.id, e.created_at FROM executions e
            WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.status = 'completed'
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) s4
        UNION ALL
        SELECT * FROM (SELECT e.id, e.created_at FROM executions e
            WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.status = 'failed'
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) s5
        UNION ALL
        SELECT * FROM (SELECT e.id, e.created_at FROM executions e
            WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.status = 'stopped'
            ORDER BY e.created_at DESC, e.id DESC LIMIT 1) s6
    ) n ORDER BY n.created_at DESC, n.id DESC LIMIT 1) AS last_run_id
    FROM flows WHERE flows.flow_id <> ''
)
SELECT r.*
FROM newest JOIN executions r ON r.id = newest.last_run_id
WHERE $3 = 0 OR r.created_at < $1 OR (r.created_at = $1 AND newest.flow_id < $2)
ORDER BY r.created_at DESC, newest.flow_id DESC
LIMIT $4
