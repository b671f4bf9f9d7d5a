-- The deadline timer: root $1's flow deadline becomes $2 (its start plus its
-- timeout, for a root started after it was created; null when its options no
-- longer set a timeout). One primary key probe.
UPDATE executions SET deadline_at = $2
WHERE id = $1 AND deadline_at IS NOT NULL
