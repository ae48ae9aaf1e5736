-- "Log out everywhere" and a password change must also end the sessions that are no longer
-- listed (their registry row is gone while a copy of the cookie or token is still out there).
-- One row per user, with sid 'user:<id>', says: every session of this user that started before
-- not_before is revoked, except the one whose key is exempt (the session that asked).
ALTER TABLE revoked_sessions ADD COLUMN not_before BIGINT;
ALTER TABLE revoked_sessions ADD COLUMN exempt TEXT;
