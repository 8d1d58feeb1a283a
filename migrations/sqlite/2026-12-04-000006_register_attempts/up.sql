-- Registrations counted per client address (its /64 for IPv6) *before* the password is hashed:
-- a row is written as pending when a registration starts, kept (done = 1) when the account
-- is created and deleted when it is not, so a parallel burst cannot outrun REGISTER_MAX_PER_IP.
CREATE TABLE register_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    ip_key TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    done BOOLEAN NOT NULL DEFAULT 0
);
CREATE INDEX register_attempts_ip_idx ON register_attempts (ip_key, created_at);
CREATE INDEX register_attempts_created_idx ON register_attempts (created_at);
