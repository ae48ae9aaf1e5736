ALTER TABLE jwt_refresh_families DROP COLUMN grace_until;
ALTER TABLE jwt_refresh_families DROP COLUMN successor;
ALTER TABLE jwt_refresh_families DROP COLUMN previous_jti;
