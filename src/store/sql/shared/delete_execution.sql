-- deleteExecution, step 2 of 2: the schema cascades, so deleting the top row
-- removes the subtree (through the index of children), its claims (a foreign
-- key on SQLite, a trigger on PostgreSQL) and its recovery history.
DELETE FROM executions WHERE id = $1
