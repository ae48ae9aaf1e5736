-- Two tabs (or a retried request) that refresh with the same token at once must not look like a
-- stolen token being replayed: for a few seconds after a rotation, the token just rotated away
-- gets the same successor again (RFC 9700 permits this grace).
ALTER TABLE jwt_refresh_families ADD COLUMN previous_jti TEXT;
ALTER TABLE jwt_refresh_families ADD COLUMN successor TEXT;      -- the refresh token it became
ALTER TABLE jwt_refresh_families ADD COLUMN grace_until BIGINT;
