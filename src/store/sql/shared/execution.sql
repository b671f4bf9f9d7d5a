-- execution(id:): execution $1, of owner $2 when $2 is not null.
SELECT * FROM executions WHERE id = $1 AND ($2 IS NULL OR owner_id = $2)
