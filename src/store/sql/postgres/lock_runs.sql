-- Admission, step 1 (PostgreSQL): the roots of the runs of the JSON array
-- $1 that have a limit, locked in id order. Admissions to one run take
-- turns here, so each counts the slots in use (admit_run, its own
-- statement, its own snapshot) after the one before it committed. FOR NO KEY
-- UPDATE: the inserts of children, whose foreign key checks share the root's
-- row, go on meanwhile.
SELECT id FROM executions
WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb))) AND max_concurrency IS NOT NULL
ORDER BY id
FOR NO KEY UPDATE
