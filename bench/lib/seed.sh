# shellcheck shell=bash
# bench/lib/seed.sh: the scale scenario's SQL (sourced by bench/run.sh). Columns as in
# migrations/{sqlite,postgres}/: sessions(id, user_id, token_hash UNIQUE, status, client_fingerprint
# (64 chars), created_at, expires_at, last_seen_at, user_agent, ip, revoked_reason, revoked_at).
# Times are naive UTC, as the server writes them.

# seed_sql BACKEND ROWS USERS ACTIVE_PCT RETENTION_DAYS OWNER_ID: SQL that adds USERS users (sharing
# OWNER_ID's password hash; they never log in) and ROWS sessions spread over all users, in one
# transaction. ACTIVE_PCT% of the sessions are live (status active, expiring in 1-7 days); the rest
# are dead and older than RETENTION_DAYS, so the purge deletes them: every second one 'expired'
# (expires_at RETENTION_DAYS+1 .. +370 days ago), the others 'inactive' (logged out, revoked_at that
# long ago). Token hashes and fingerprints are random 64-hex strings, ids random v4 UUIDs.
seed_sql() {
    local backend=$1 rows=$2 users=$3 pct=$4 ret=$5 owner=$6
    case $backend in
        sqlite) cat <<SQL
BEGIN;
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $users)
INSERT INTO users (username, username_key, password_hash, created_at)
SELECT 'bench_seed_' || i, 'bench_seed_' || i, (SELECT password_hash FROM users WHERE id = $owner),
       datetime('now', '-400 days')
FROM g;
CREATE TEMP TABLE bench_user_ids (k INTEGER PRIMARY KEY, id INTEGER NOT NULL);
INSERT INTO bench_user_ids (k, id) SELECT row_number() OVER (ORDER BY id) - 1, id FROM users;
WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < $rows),
s AS (
    SELECT i, lower(hex(randomblob(16))) AS u,
           CASE WHEN i % 100 < $pct THEN 'active' WHEN i % 2 = 0 THEN 'expired' ELSE 'inactive' END AS status,
           $ret + 1 + i % 370 AS age, i % 6 AS fresh
    FROM g
)
INSERT INTO sessions (id, user_id, token_hash, status, client_fingerprint, created_at, expires_at,
                      last_seen_at, user_agent, ip, revoked_reason, revoked_at)
SELECT substr(u, 1, 8) || '-' || substr(u, 9, 4) || '-4' || substr(u, 14, 3) || '-'
           || substr('89ab', 1 + i % 4, 1) || substr(u, 18, 3) || '-' || substr(u, 21, 12),
       (SELECT id FROM bench_user_ids WHERE k = i % (SELECT count(*) FROM bench_user_ids)),
       lower(hex(randomblob(32))), status, lower(hex(randomblob(32))),
       CASE status WHEN 'active' THEN datetime('now', '-' || fresh || ' days')
                   ELSE datetime('now', '-' || (age + 7) || ' days') END,
       CASE status WHEN 'active' THEN datetime('now', '+' || (7 - fresh) || ' days')
                   ELSE datetime('now', '-' || age || ' days') END,
       CASE status WHEN 'active' THEN datetime('now', '-' || fresh || ' days')
                   ELSE datetime('now', '-' || (age + 1) || ' days') END,
       'bench-seed/1.0', '198.51.100.' || (i % 250 + 1),
       CASE status WHEN 'inactive' THEN 'logout' END,
       CASE status WHEN 'inactive' THEN datetime('now', '-' || (age + 1) || ' days') END
FROM s;
DROP TABLE bench_user_ids;
COMMIT;
PRAGMA wal_checkpoint(TRUNCATE);
SQL
        ;;
        postgres) cat <<SQL
BEGIN;
INSERT INTO users (username, username_key, password_hash, created_at)
SELECT 'bench_seed_' || i, 'bench_seed_' || i, (SELECT password_hash FROM users WHERE id = $owner),
       (now() AT TIME ZONE 'utc') - interval '400 days'
FROM generate_series(1, $users) AS i;
CREATE TEMP TABLE bench_user_ids ON COMMIT DROP AS
    SELECT (row_number() OVER (ORDER BY id) - 1)::bigint AS k, id FROM users;
CREATE UNIQUE INDEX ON bench_user_ids (k);
INSERT INTO sessions (id, user_id, token_hash, status, client_fingerprint, created_at, expires_at,
                      last_seen_at, user_agent, ip, revoked_reason, revoked_at)
SELECT gen_random_uuid()::text, b.id,
       encode(sha256(convert_to('tessera-bench-token-' || s.i || '-' || gen_random_uuid(), 'UTF8')), 'hex'),
       s.status,
       encode(sha256(convert_to('tessera-bench-fingerprint-' || s.i, 'UTF8')), 'hex'),
       CASE s.status WHEN 'active' THEN t - make_interval(days => s.fresh)
                     ELSE t - make_interval(days => s.age + 7) END,
       CASE s.status WHEN 'active' THEN t + make_interval(days => 7 - s.fresh)
                     ELSE t - make_interval(days => s.age) END,
       CASE s.status WHEN 'active' THEN t - make_interval(days => s.fresh)
                     ELSE t - make_interval(days => s.age + 1) END,
       'bench-seed/1.0', '198.51.100.' || (s.i % 250 + 1),
       CASE s.status WHEN 'inactive' THEN 'logout' END,
       CASE s.status WHEN 'inactive' THEN t - make_interval(days => s.age + 1) END
FROM (SELECT i, (now() AT TIME ZONE 'utc') AS t,
             CASE WHEN i % 100 < $pct THEN 'active' WHEN i % 2 = 0 THEN 'expired' ELSE 'inactive' END AS status,
             $ret + 1 + i % 370 AS age, i % 6 AS fresh
      FROM generate_series(1, $rows) AS i) AS s
JOIN bench_user_ids AS b ON b.k = s.i % (SELECT count(*) FROM bench_user_ids);
COMMIT;
ANALYZE users;
ANALYZE sessions;
SQL
        ;;
    esac
}

# dead_sql BACKEND RETENTION_DAYS: how many sessions the purge would delete (its own definition:
# inactive and revoked, or last seen, before the cutoff; expired with expires_at before it) and
# how many sessions there are in all, as "DEAD|TOTAL".
dead_sql() {
    local cutoff
    case $1 in
        sqlite) cutoff="datetime('now', '-$2 days')" ;;
        postgres) cutoff="(now() AT TIME ZONE 'utc') - make_interval(days => $2)" ;;
    esac
    cat <<SQL
SELECT (SELECT count(*) FROM sessions
        WHERE (status = 'inactive' AND (revoked_at < $cutoff OR (revoked_at IS NULL AND last_seen_at < $cutoff)))
           OR (status = 'expired' AND expires_at < $cutoff)),
       (SELECT count(*) FROM sessions);
SQL
}
