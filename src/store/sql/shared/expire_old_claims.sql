-- expireOldClaims: active claims past their expiry ($1) become expired (each
-- logged by a trigger, in this statement).
UPDATE execution_claims SET status = 'expired'
WHERE status = 'active' AND expires_at < $1
RETURNING execution_id
