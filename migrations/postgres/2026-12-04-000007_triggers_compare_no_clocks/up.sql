-- Migration 000004's triggers skipped sessions already past `expires_at`, comparing that time
-- (written from the application host's clock) with the database server's now(). With the
-- application's clock behind the database's, a revoked session that the application still took
-- for live was not announced, and other instances kept accepting it from their caches.
-- What needs no news is told apart by status instead: `expired` is set only once a session is
-- past its expiry (every instance judges that by itself), `inactive` is a revocation. The purge
-- deletes only ended sessions, so deleting an active one (an account deletion's cascade, an
-- operator's SQL) is always news.
DROP TRIGGER sessions_notify_end ON sessions;
DROP TRIGGER sessions_notify_delete ON sessions;

CREATE TRIGGER sessions_notify_end AFTER UPDATE OF status ON sessions
    FOR EACH ROW WHEN (OLD.status = 'active' AND NEW.status = 'inactive')
    EXECUTE FUNCTION tessera_notify_session_change();

CREATE TRIGGER sessions_notify_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION tessera_notify_session_change();
