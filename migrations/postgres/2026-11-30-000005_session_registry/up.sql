-- "Your devices" for the strategies whose sessions the server cannot list by itself (sticky:
-- other replicas' memory; cookie and jwt: the clients; memcached: no secondary index): one row
-- per logged-in session, written at log-in and refreshed at most once a minute.
CREATE TABLE session_registry (
    sid        CHAR(64) PRIMARY KEY,  -- hex SHA-256 of the session ID, never the ID itself
    user_id    BIGINT NOT NULL,
    device     TEXT NOT NULL,         -- JSON: browser label, address, replica, last seen
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL        -- log-in + the absolute lifetime: no session outlives it
);
CREATE INDEX session_registry_user_id ON session_registry (user_id);

-- The revocation list now serves cookie and sticky sessions as well as JWTs.
ALTER TABLE jwt_revocations RENAME TO revoked_sessions;
