-- The executions of the JSON array of ids $1 (of owner $2 when $2 is not
-- null): parents and roots of a level, the rows of live events. The CROSS JOIN
-- fixes the join order: each key is one probe of the primary key.
SELECT r.*
FROM json_each($1) AS k
CROSS JOIN executions r
WHERE r.rowid IN (
    SELECT x.rowid FROM executions x
    WHERE x.id = k.value AND ($2 IS NULL OR x.owner_id = $2)
    ORDER BY x.id)
