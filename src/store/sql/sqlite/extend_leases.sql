-- extendClaim(s), step 2 of 2: the leases of the executions whose claims
-- step 1 extended (the JSON array $5) move to $4. Returns their ids.
UPDATE executions SET
    lease_expires_at = (SELECT expires_at FROM execution_claims c WHERE c.execution_id = executions.id)
WHERE id IN (SELECT value FROM json_each($5))
RETURNING id, lease_expires_at
