-- cancelExecution, step 1 of 3: locks execution $1 (of owner $2 when $2 is
-- not null) and every execution below it that is not finished; returns
-- their ids. Step 2 stops them, step 3 releases their claims.
-- The subtree: a run's root is one range of the index of runs; below an
-- inner execution the walk goes down the index of children, one probe per
-- node (a LATERAL subquery fenced with OFFSET 0: joined whole, the planner
-- costs the walk as a hash join over the table). The subtree's ids are one
-- array (a value computed once), unnested and joined to the table by
-- primary key, so a row a concurrent pull or finish changed is checked
-- again, as it is now, against plain conditions and its one id: an UPDATE
-- joined to the walk re-checked such rows against a walk it could not read
-- again and dropped them (a cancel under pulling workers stopped a tenth of
-- its run), and `id = ANY (the array)` re-checked each against the whole
-- array in turn (10,000 rows pulls had claimed, each compared with 100,000
-- ids, ran into the statement timeout). Locked in id order, as finishes and
-- heartbeats lock (waiting for rows others hold, as they wait: no two of
-- these deadlock).
WITH RECURSIVE below(id) AS (
    SELECT id FROM executions
    WHERE id = $1 AND parent_execution_id IS NOT NULL AND ($2 IS NULL OR owner_id = $2)
    UNION ALL
    SELECT e.id FROM below b CROSS JOIN LATERAL (
        SELECT id FROM executions e WHERE e.parent_execution_id = b.id OFFSET 0) e
), subtree(id) AS (
    SELECT id FROM below
    UNION ALL
    SELECT x.id FROM executions x
    WHERE x.root_execution_id = $1
      AND EXISTS (SELECT 1 FROM executions r
                  WHERE r.id = $1 AND r.parent_execution_id IS NULL AND ($2 IS NULL OR r.owner_id = $2))
)
SELECT e.id FROM unnest(ARRAY(SELECT id FROM subtree)) AS s(id)
JOIN executions e ON e.id = s.id
WHERE status NOT IN ('completed', 'failed', 'stopped')
  AND ($2 IS NULL OR owner_id = $2)
ORDER BY e.id
FOR UPDATE OF e
