-- The state SESSION_BACKEND=jwt claims not to need: revoked sessions and refresh-token families,
-- used when REDIS_URL is not set. Keyed by the hex SHA-256 of the session ID (the token's sid).
CREATE TABLE jwt_revocations (
    sid        CHAR(64) PRIMARY KEY,
    expires_at BIGINT NOT NULL      -- when the last token of the session would have expired anyway
);
CREATE INDEX jwt_revocations_expires_at ON jwt_revocations (expires_at);

CREATE TABLE jwt_refresh_families (
    sid         CHAR(64) PRIMARY KEY,
    current_jti TEXT NOT NULL,      -- the one refresh token of the family that may still be used
    expires_at  BIGINT NOT NULL
);
CREATE INDEX jwt_refresh_families_expires_at ON jwt_refresh_families (expires_at);
