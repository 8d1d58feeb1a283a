DROP TRIGGER sessions_log_end;
DROP TRIGGER sessions_log_delete;

CREATE TRIGGER sessions_log_end AFTER UPDATE OF status ON sessions
    FOR EACH ROW WHEN OLD.status = 'active' AND NEW.status <> 'active'
        AND OLD.expires_at > datetime('now', '-1 second')
BEGIN
    INSERT INTO session_invalidations (user_id) VALUES (OLD.user_id);
END;

CREATE TRIGGER sessions_log_delete AFTER DELETE ON sessions
    FOR EACH ROW WHEN OLD.status = 'active' AND OLD.expires_at > datetime('now', '-1 second')
BEGIN
    INSERT INTO session_invalidations (user_id) VALUES (OLD.user_id);
END;
