-- createExecution(s): the keys of the JSON array $1 that have a limit.
SELECT key FROM concurrency_limits
WHERE key IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
