-- flows of one owner ($5): the newest run of each of its flows, newest first,
-- after the cursor ($1, $2) = (last run time, flow id) when $3 is 1, at most
-- $4 rows. The walk and each flow newest run go through the partial index of
-- roots by owner, flow and time (one probe for a flow newest run).
WITH RECURSIVE flows(flow_id) AS (
    SELECT CAST('' AS TEXT)
    UNION ALL
    SELECT (SELECT e.flow_id FROM executions e
            WHERE e.execution_depth = 0 AND e.owner_id = $5 AND e.flow_id > flows.flow_id
            ORDER BY e.flow_id LIMIT 1)
    FROM flows WHERE flows.flow_id IS NOT NULL
), newest AS (
    SELECT flows.flow_id, (SELECT e.id FROM executions e
        WHERE e.flow_id = flows.flow_id AND e.execution_depth = 0 AND e.owner_id = $5
        ORDER BY e.created_at DESC, e.id DESC LIMIT 1) AS last_run_id
    FROM flows WHERE flows.flow_id <> ''
)
SELECT r.*
FROM newest JOIN executions r ON r.id = newest.last_run_id
WHERE $3 = 0 OR r.created_at < $1 OR (r.created_at = $1 AND newest.flow_id < $2)
ORDER BY r.created_at DESC, newest.flow_id DESC
LIMIT $4
