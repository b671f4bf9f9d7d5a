-- The executions of the JSON array of ids $1 (of owner $2 when $2 is not
-- null): parents and roots of a level, the rows of live events. Each key is
-- one probe of the primary key, joined per key through a LATERAL subquery
-- fenced with OFFSET 0: PostgreSQL cannot flatten it into a join it would plan
-- on its own (a plain IN guessed a hundred keys times the average fanout and
-- chose a sequential scan).
SELECT r.*
FROM jsonb_array_elements_text(CAST($1 AS jsonb)) AS k(value)
CROSS JOIN LATERAL (
    SELECT x.* FROM executions x
    WHERE x.id = k.value AND ($2 IS NULL OR x.owner_id = $2)
    ORDER BY x.id
    OFFSET 0
) r
