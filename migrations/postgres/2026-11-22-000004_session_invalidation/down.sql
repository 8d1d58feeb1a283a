DROP TRIGGER users_notify_delete ON users;
DROP TRIGGER users_notify_disable ON users;
DROP TRIGGER sessions_notify_delete ON sessions;
DROP TRIGGER sessions_notify_end ON sessions;
DROP FUNCTION tessera_notify_session_change();
