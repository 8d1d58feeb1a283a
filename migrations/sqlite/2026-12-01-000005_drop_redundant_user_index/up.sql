-- sessions_user_status_idx (user_id, status) serves every lookup by user_id on its own, the
-- cascade from users included, so this index only cost writes: every login, every end and every
-- purged row updated one more b-tree (on SQLite, a sixth of the pages a purge rewrites).
DROP INDEX sessions_user_id_idx;
