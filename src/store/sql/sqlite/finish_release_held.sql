-- finishExecution(s), step 1 of 2: the live claims (at $2) of the items of
-- $1 are released, unless their execution is finished (a cancelled one):
-- returns the items that held one. (The + before status and
-- expiry keeps SQLite from reading the claims through the index of live
-- claims, which would visit every one of them: the items drive, one primary
-- key probe each.)
UPDATE execution_claims SET status = 'released'
FROM (
    SELECT json_extract(x.value, '$.execution_id') AS execution_id,
           json_extract(x.value, '$.worker_id') AS worker_id,
           json_extract(x.value, '$.at_node_deadline') AS at_node_deadline
    FROM json_each($1) AS x
) AS i
WHERE execution_claims.execution_id = i.execution_id
  AND execution_claims.worker_id = i.worker_id
  AND +execution_claims.status = 'active'
  AND +execution_claims.expires_at >= CASE WHEN i.at_node_deadline
        THEN (SELECT n.node_deadline_at FROM executions n WHERE n.id = execution_claims.execution_id)
        ELSE $2 END
  AND EXISTS (SELECT 1 FROM executions t
              WHERE t.id = execution_claims.execution_id
                AND t.status NOT IN ('completed', 'failed', 'stopped'))
RETURNING execution_claims.execution_id
