-- Which of the ids of the JSON array $1 exist.
SELECT id FROM executions WHERE id IN (SELECT value FROM json_each($1))
