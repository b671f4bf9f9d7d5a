-- rootExecutions: the depth and size of the tree of every root of the JSON
-- array $1 (of owner $2 when $2 is not null), two probes of the index of runs
-- per root.
SELECT k.value AS id,
       (SELECT CAST(MAX(x.execution_depth) AS BIGINT) FROM executions x
        WHERE x.root_execution_id = k.value AND ($2 IS NULL OR x.owner_id = $2)) AS levels,
       (SELECT CAST(COUNT(*) AS BIGINT) FROM executions x
        WHERE x.root_execution_id = k.value AND ($2 IS NULL OR x.owner_id = $2)) AS total
FROM json_each($1) AS k
