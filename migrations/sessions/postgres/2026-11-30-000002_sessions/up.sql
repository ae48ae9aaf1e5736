-- Sessions for SESSION_BACKEND=postgres. Times are Unix seconds, as in every strategy.
CREATE TABLE sessions (
    id         CHAR(64) PRIMARY KEY,  -- hex SHA-256 of the session ID, never the ID itself
    state      TEXT NOT NULL,         -- the session as JSON
    version    BIGINT NOT NULL,       -- compare-and-set: UPDATE ... WHERE version = <read>
    user_id    BIGINT,                -- who is logged in; "log out all devices" reads it
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
