-- The claim rows of the executions of the JSON array $1 (those of owner $2
-- when $2 is not null), one probe of the primary key per key.
SELECT r.*
FROM json_each($1) AS k
CROSS JOIN execution_claims r
WHERE r.rowid IN (
    SELECT x.rowid FROM execution_claims x
    WHERE x.execution_id = k.value
      AND ($2 IS NULL OR EXISTS (
          SELECT 1 FROM executions o WHERE o.id = x.execution_id AND o.owner_id = $2))
    ORDER BY x.execution_id)
