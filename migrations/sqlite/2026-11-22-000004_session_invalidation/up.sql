-- Instances that keep verified sessions in memory must hear of every session that stops being
-- usable, whoever ends it (another process on this file, the CLI, an operator's SQL). SQLite has
-- no notifications, so triggers append the user id to this log, which every instance polls.
-- AUTOINCREMENT: sequence numbers are never reused, and SQLite's single writer commits them in
-- order, so "everything after the last number I saw" misses nothing.
CREATE TABLE session_invalidations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
);

-- A session already past its expiry needs no entry (a cached copy expires by itself), which keeps
-- the purge, which marks overdue sessions expired by the thousand, from filling the log. Stored
-- times are UTC text ('YYYY-MM-DD HH:MM:SS.ffffff'), so they compare as strings.
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

CREATE TRIGGER users_log_disable AFTER UPDATE OF disabled_at ON users
    FOR EACH ROW WHEN OLD.disabled_at IS NOT NEW.disabled_at
BEGIN
    INSERT INTO session_invalidations (user_id) VALUES (OLD.id);
END;

CREATE TRIGGER users_log_delete AFTER DELETE ON users
BEGIN
    INSERT INTO session_invalidations (user_id) VALUES (OLD.id);
END;
