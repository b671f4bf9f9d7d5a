-- Why a claim of execution $1 was refused: its status and pause
-- mark, if it exists.
SELECT status, paused FROM executions WHERE id = $1
