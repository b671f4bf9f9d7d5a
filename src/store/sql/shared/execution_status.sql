-- Why a claim of execution $1 was refused: its status, if it exists.
SELECT status FROM executions WHERE id = $1
