DELETE FROM revoked_sessions WHERE not_before IS NOT NULL;
ALTER TABLE revoked_sessions DROP COLUMN exempt;
ALTER TABLE revoked_sessions DROP COLUMN not_before;
