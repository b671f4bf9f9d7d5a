-- childCount of every parent of the JSON array $1 (of owner $2 when $2 is
-- not null): one count over the index of children per parent.
SELECT k.value AS id,
       (SELECT CAST(COUNT(*) AS BIGINT) FROM executions x
        WHERE x.parent_execution_id = k.value AND ($2 IS NULL OR x.owner_id = $2)) AS total
FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS k(value)
