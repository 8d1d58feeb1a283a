DROP TABLE auth_events;
DROP TABLE login_failures;
DROP INDEX sessions_status_expires_idx;
DROP INDEX sessions_user_status_idx;
ALTER TABLE sessions DROP COLUMN revoked_at;
ALTER TABLE sessions DROP COLUMN revoked_reason;
ALTER TABLE sessions DROP COLUMN ip;
ALTER TABLE sessions DROP COLUMN user_agent;
