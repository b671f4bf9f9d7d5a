-- Which of the ids of the JSON array $1 exist.
SELECT id FROM executions WHERE id IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
