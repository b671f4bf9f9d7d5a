-- Why a claim of execution $1 was refused: its status, pause mark and
-- what it waits for, if it exists.
SELECT status, paused, waiting FROM executions WHERE id = $1
