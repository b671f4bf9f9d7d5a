-- The deadline timer: the node deadlines of the executions of the JSON
-- array $1 that it could not take back (no claim was live at the deadline:
-- the claim ended without clearing it) are cleared, unless a new claim set
-- a later one meanwhile (after $2).
UPDATE executions SET node_deadline_at = NULL
WHERE id IN (SELECT value FROM json_each($1))
  AND node_deadline_at <= $2
