-- The events of root $7 in (($1, $2), ($3, $4)], at most $5, only of owner
-- $6 when $6 is not null. One range of the index of events by root: the
-- redundant bounds on tx alone keep the planner on it. (The rows are read
-- apart, by id: a join here let the generic plan hash the whole table per
-- page.)
SELECT e.tx, e.seq, e.kind, e.execution_id, e.root_execution_id, e.owner_id, false AS pending
FROM execution_events e
WHERE e.root_execution_id = $7
  AND e.tx >= $1 AND e.tx <= $3
  AND (e.tx, e.seq) > ($1, $2) AND (e.tx, e.seq) <= ($3, $4)
  AND ($6 IS NULL OR e.owner_id = $6)
ORDER BY e.tx, e.seq
LIMIT $5
