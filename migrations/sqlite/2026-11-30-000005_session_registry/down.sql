ALTER TABLE revoked_sessions RENAME TO jwt_revocations;
DROP TABLE session_registry;
