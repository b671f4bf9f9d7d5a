-- claimNextExecutions, step 1 of 3: the {limit} oldest executions of flow $4
-- in the fresh queue (CREATED, no lease), through its partial index by flow.
SELECT id FROM executions
WHERE status = 'created' AND lease_expires_at IS NULL AND flow_id = $4
ORDER BY created_at, id
LIMIT {limit}
