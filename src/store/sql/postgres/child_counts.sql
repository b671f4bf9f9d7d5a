-- childCount of every parent of the JSON array $1 (of every owner; $2, the
-- owner of `owner_child_counts`, is not used): one count over the index of
-- children per parent, read through the index alone.
SELECT k.value AS id,
       (SELECT CAST(COUNT(*) AS BIGINT) FROM executions x
        WHERE x.parent_execution_id = k.value) AS total
FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS k(value)
