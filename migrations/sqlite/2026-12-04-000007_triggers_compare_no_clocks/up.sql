-- Migration 000004's triggers skipped sessions already past `expires_at`, comparing that time
-- (written from the application host's clock) with SQLite's datetime('now'). With the
-- application's clock behind, a revoked session that the application still took for live was
-- not logged, and other processes kept accepting it from their caches.
-- What needs no news is told apart by status instead: `expired` is set only once a session is
-- past its expiry (every process judges that by itself), `inactive` is a revocation. The purge
-- deletes only ended sessions, so deleting an active one is always news.
DROP TRIGGER sessions_log_end;
DROP TRIGGER sessions_log_delete;

CREATE TRIGGER sessions_log_end AFTER UPDATE OF status ON sessions
    FOR EACH ROW WHEN OLD.status = 'active' AND NEW.status = 'inactive'
BEGIN
    INSERT INTO session_invalidations (user_id) VALUES (OLD.user_id);
END;

CREATE TRIGGER sessions_log_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN OLD.status = 'active'
BEGIN
    INSERT INTO session_invalidations (user_id) VALUES (OLD.user_id);
END;
