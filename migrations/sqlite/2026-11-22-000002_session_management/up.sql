ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN ip TEXT;
ALTER TABLE sessions ADD COLUMN revoked_reason TEXT;
ALTER TABLE sessions ADD COLUMN revoked_at TIMESTAMP;

CREATE INDEX sessions_user_status_idx ON sessions (user_id, status);
CREATE INDEX sessions_status_expires_idx ON sessions (status, expires_at);

CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username_key TEXT NOT NULL,
    ip TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    cleared INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX login_failures_pair_idx ON login_failures (username_key, ip, created_at);
CREATE INDEX login_failures_ip_idx ON login_failures (ip, created_at);
CREATE INDEX login_failures_created_idx ON login_failures (created_at);

CREATE TABLE auth_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    user_id INTEGER,
    session_id TEXT,
    kind TEXT NOT NULL,
    ip TEXT,
    user_agent TEXT,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX auth_events_user_idx ON auth_events (user_id, created_at);
CREATE INDEX auth_events_kind_ip_idx ON auth_events (kind, ip, created_at);
CREATE INDEX auth_events_created_idx ON auth_events (created_at);
