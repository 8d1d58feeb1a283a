-- Sliding renewal: read, then last_seen_at and expires_at together.
\set sid random(1, :sessions)
SELECT s.id, s.user_id, s.status, s.client_fingerprint, s.created_at, s.expires_at, s.last_seen_at, s.user_agent, s.ip, u.id, u.username, u.created_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = encode(sha256(('s' || :sid)::bytea), 'hex') AND u.disabled_at IS NULL LIMIT 1;
UPDATE sessions SET last_seen_at = now() AT TIME ZONE 'UTC', expires_at = (now() AT TIME ZONE 'UTC') + interval '7 days' WHERE id = 's' || :sid AND status = 'active';
