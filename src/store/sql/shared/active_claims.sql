-- activeClaims: live claims at $1 (active, not past their expiry) through
-- the index of live claims, of owner $2 when $2 is not null.
SELECT c.* FROM execution_claims c
JOIN executions e ON e.id = c.execution_id
WHERE c.status = 'active' AND c.expires_at >= $1 AND ($2 IS NULL OR e.owner_id = $2)
ORDER BY c.claimed_at, c.execution_id
