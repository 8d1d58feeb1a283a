-- POST /logout: find the active session by token hash, end it (the trigger NOTIFYs), audit event.
\set sid random(1, :sessions)
SELECT id, user_id FROM sessions WHERE token_hash = encode(sha256(('s' || :sid)::bytea), 'hex') AND status = 'active' LIMIT 1;
UPDATE sessions SET status = 'inactive', revoked_reason = 'logout', revoked_at = now() AT TIME ZONE 'UTC' WHERE id = ANY(ARRAY['s' || :sid]) AND status = 'active';
INSERT INTO auth_events (user_id, session_id, kind, ip, user_agent, created_at) VALUES (1, 's' || :sid, 'logout', '10.1.0.7', 'pgbench', now() AT TIME ZONE 'UTC');
