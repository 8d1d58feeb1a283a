-- Instances that keep verified sessions in memory must hear of every session that stops being
-- usable, whoever ends it (another instance, the CLI, an operator's SQL). Triggers send the user id
-- on channel `tessera_sessions`; NOTIFY is delivered at commit, to every listening connection.
CREATE FUNCTION tessera_notify_session_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        PERFORM pg_notify('tessera_sessions', OLD.id::text);
    ELSE
        PERFORM pg_notify('tessera_sessions', OLD.user_id::text);
    END IF;
    RETURN NULL;
END
$$;

-- A session already past its expiry needs no news (a cached copy expires by itself), which keeps
-- the purge, which marks overdue sessions expired by the thousand, from flooding the channel.
CREATE TRIGGER sessions_notify_end AFTER UPDATE OF status ON sessions
    FOR EACH ROW WHEN (OLD.status = 'active' AND NEW.status <> 'active'
        AND OLD.expires_at > (now() AT TIME ZONE 'UTC') - interval '1 second')
    EXECUTE FUNCTION tessera_notify_session_change();

CREATE TRIGGER sessions_notify_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN (OLD.status = 'active'
        AND OLD.expires_at > (now() AT TIME ZONE 'UTC') - interval '1 second')
    EXECUTE FUNCTION tessera_notify_session_change();

CREATE TRIGGER users_notify_disable AFTER UPDATE OF disabled_at ON users
    FOR EACH ROW WHEN (OLD.disabled_at IS DISTINCT FROM NEW.disabled_at)
    EXECUTE FUNCTION tessera_notify_session_change();

CREATE TRIGGER users_notify_delete AFTER DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION tessera_notify_session_change();
