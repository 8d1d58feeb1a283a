DROP TRIGGER sessions_notify_end ON sessions;
DROP TRIGGER sessions_notify_delete ON sessions;

CREATE TRIGGER sessions_notify_end AFTER UPDATE OF status ON sessions
    FOR EACH ROW WHEN (OLD.status = 'active' AND NEW.status <> 'active'
        AND OLD.expires_at > (now() AT TIME ZONE 'UTC') - interval '1 second')
    EXECUTE FUNCTION tessera_notify_session_change();

CREATE TRIGGER sessions_notify_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.status = 'active'
        AND OLD.expires_at > (now() AT TIME ZONE 'UTC') - interval '1 second')
    EXECUTE FUNCTION tessera_notify_session_change();
