-- childCount of every parent of the JSON array $1, counting the children of
-- owner $2: one count over the index of children per parent.
SELECT k.value AS id,
       (SELECT CAST(COUNT(*) AS BIGINT) FROM executions x
        WHERE x.parent_execution_id = k.value AND x.owner_id = $2) AS total
FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS k(value)
