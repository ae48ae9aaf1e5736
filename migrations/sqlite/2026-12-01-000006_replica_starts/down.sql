ALTER TABLE session_registry DROP COLUMN held_since;
ALTER TABLE session_registry DROP COLUMN held_by;
DROP TABLE replica_starts;
