DROP TRIGGER users_log_delete;
DROP TRIGGER users_log_disable;
DROP TRIGGER sessions_log_delete;
DROP TRIGGER sessions_log_end;
DROP TABLE session_invalidations;
