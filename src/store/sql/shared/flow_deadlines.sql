-- The deadline timer: up to 100 unfinished roots whose flow deadline has
-- come by $1, in deadline order, read through the index of deadlines (which
-- holds unfinished roots with a deadline only). The caller cancels each run
-- whose timeout has run out since its root's start (or creation), and moves
-- the deadline of a root started after its creation to its start plus the
-- timeout.
SELECT * FROM executions
WHERE deadline_at IS NOT NULL AND deadline_at <= $1
  AND status IN ('created', 'running', 'paused')
ORDER BY deadline_at
LIMIT 100
