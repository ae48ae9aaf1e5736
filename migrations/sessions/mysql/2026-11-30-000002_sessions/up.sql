-- Sessions for SESSION_BACKEND=mysql (MySQL 8 or MariaDB 10.6+). Times are Unix seconds.
CREATE TABLE sessions (
    id         CHAR(64) NOT NULL PRIMARY KEY,  -- hex SHA-256 of the session ID, never the ID itself
    state      MEDIUMTEXT NOT NULL,            -- the session as JSON
    version    BIGINT NOT NULL,                -- compare-and-set: UPDATE ... WHERE version = <read>
    user_id    BIGINT NULL,                    -- who is logged in; "log out all devices" reads it
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    INDEX sessions_user_id (user_id),
    INDEX sessions_expires_at (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
