-- The claim rows of the executions of the JSON array $1 (those of owner $2
-- when $2 is not null), one probe of the primary key per key (see
-- executions_by_ids).
SELECT r.*
FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS k(value)
CROSS JOIN LATERAL (
    SELECT x.* FROM execution_claims x
    WHERE x.execution_id = k.value
      AND ($2 IS NULL OR EXISTS (
          SELECT 1 FROM executions o WHERE o.id = x.execution_id AND o.owner_id = $2))
    ORDER BY x.execution_id
    OFFSET 0
) r
