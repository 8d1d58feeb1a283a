-- POST /login on PostgreSQL with the throttle on, statement for statement as tessera sends them
-- (captured with log_statement=all): pending failure row, the two throttle counts, the user,
-- forgiving the pair, the session insert with the per-user limit check, the audit event.
\set uid random(1, :users)
\set fid random(1, 1000000000)
INSERT INTO login_failures (username_key, ip, created_at, cleared) VALUES ('user' || :uid, '10.1.' || (:uid % 250) || '.7', now() AT TIME ZONE 'UTC', 2) RETURNING id;
SELECT count(*), min(created_at), max(created_at) FROM login_failures WHERE id != :fid AND ip = '10.1.' || (:uid % 250) || '.7' AND created_at > (now() AT TIME ZONE 'UTC') - interval '15 minutes' AND username_key = 'user' || :uid AND cleared = 0 LIMIT 1;
SELECT count(*), min(created_at), max(created_at) FROM login_failures WHERE id != :fid AND ip = '10.1.' || (:uid % 250) || '.7' AND created_at > (now() AT TIME ZONE 'UTC') - interval '15 minutes' AND cleared != 2 LIMIT 1;
SELECT id, username, password_hash, created_at FROM users WHERE username_key = 'user' || :uid AND disabled_at IS NULL LIMIT 1;
DELETE FROM login_failures WHERE username_key = 'user' || :uid AND ip = '10.1.' || (:uid % 250) || '.7' AND cleared = 2;
UPDATE login_failures SET cleared = 1 WHERE username_key = 'user' || :uid AND ip = '10.1.' || (:uid % 250) || '.7' AND cleared = 0;
BEGIN;
INSERT INTO sessions (id, user_id, token_hash, status, client_fingerprint, created_at, expires_at, last_seen_at, user_agent, ip) VALUES (gen_random_uuid()::text, :uid, encode(sha256(gen_random_uuid()::text::bytea), 'hex'), 'active', repeat('f', 64), now() AT TIME ZONE 'UTC', (now() AT TIME ZONE 'UTC') + interval '7 days', now() AT TIME ZONE 'UTC', 'pgbench', '10.1.0.7');
SELECT id FROM sessions WHERE user_id = :uid AND status = 'active' ORDER BY last_seen_at DESC, created_at DESC LIMIT 9223372036854775807 OFFSET 20;
COMMIT;
INSERT INTO auth_events (user_id, session_id, kind, ip, user_agent, created_at) VALUES (:uid, 'x', 'login', '10.1.0.7', 'pgbench', now() AT TIME ZONE 'UTC');
