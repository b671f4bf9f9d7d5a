-- Admission, step 2 (PostgreSQL): the limits of the keys of the JSON array
-- $1, locked in key order (after the runs' roots, in every admission): each
-- admission to a key counts its slots in use after the one before it
-- committed.
SELECT key FROM concurrency_limits
WHERE key IN (SELECT jsonb_array_elements_text(CAST($1 AS jsonb)))
ORDER BY key
FOR UPDATE
