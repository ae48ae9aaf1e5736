DROP TABLE jwt_refresh_families;
DROP TABLE jwt_revocations;
