-- /metrics: claimable executions (CREATED without a lease) among the first
-- $1 entries of the index of the fresh queue (so a scrape costs the same
-- whatever the backlog), grouped by flow, the $2 fullest flows first.
SELECT flow_id, COUNT(*) AS n, CAST(SUM(COUNT(*)) OVER () AS BIGINT) AS total
FROM (
    SELECT flow_id FROM executions
    WHERE status = 'created' AND lease_expires_at IS NULL
    ORDER BY created_at, id
    LIMIT $1
) q
GROUP BY flow_id
ORDER BY n DESC, flow_id
LIMIT $2
