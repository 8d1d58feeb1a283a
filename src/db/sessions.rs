//! Queries on the `sessions` table. A session is found only by the SHA-256 of its token; the token
//! itself never reaches the database.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{sessions, users};
use super::users::Account;
use super::DbConnection;

/// The lifecycle states stored in `sessions.status` (as text, on both backends); read and
/// written as this enum at the diesel boundary ([`crate::db::column`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum SessionStatus {
    Active,
    Inactive,
    Expired,
}

impl SessionStatus {
    pub const ALL: [Self; 3] = [Self::Active, Self::Inactive, Self::Expired];

    /// The status stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Inactive => "inactive",
            Self::Expired => "expired",
        }
    }
}

crate::db::column::text_enum!(SessionStatus);

/// A session as stored (without its token hash, which callers already have).
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    pub id: String,
    pub user_id: i64,
    pub status: SessionStatus,
    pub client_fingerprint: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

impl SessionRow {
    pub fn is_active(&self) -> bool {
        self.status == SessionStatus::Active
    }
}

/// A session to insert.
#[derive(Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: i64,
    pub token_hash: &'a str,
    pub status: SessionStatus,
    pub client_fingerprint: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub last_seen_at: NaiveDateTime,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// Why a session was ended, stored as text in `revoked_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = diesel::sql_types::Text)]
pub enum RevokeReason {
    Logout,
    LogoutAll,
    RevokedByUser,
    PasswordChange,
    SessionLimit,
    /// By an operator, with `tessera sessions revoke`.
    RevokedByAdmin,
}

impl RevokeReason {
    pub const ALL: [Self; 6] = [
        Self::Logout,
        Self::LogoutAll,
        Self::RevokedByUser,
        Self::PasswordChange,
        Self::SessionLimit,
        Self::RevokedByAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Logout => "logout",
            Self::LogoutAll => "logout_all",
            Self::RevokedByUser => "revoked_by_user",
            Self::PasswordChange => "password_change",
            Self::SessionLimit => "session_limit",
            Self::RevokedByAdmin => "revoked_by_admin",
        }
    }
}

crate::db::column::text_enum!(RevokeReason);

/// What creating a session ended besides: the session the request's cookie named, and the
/// least recently used ones beyond the per-user limit.
#[derive(Debug, Default)]
pub struct Created {
    pub replaced: Vec<String>,
    pub over_limit: Vec<String>,
}

/// The session with this token hash and its user, in one indexed query.
pub fn find_with_user(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<(SessionRow, Account)>> {
    sessions::table
        .inner_join(users::table)
        .filter(sessions::token_hash.eq(token_hash))
        .filter(users::disabled_at.is_null())
        .select((SessionRow::as_select(), Account::as_select()))
        .first(conn)
        .optional()
}

/// Inserts `new`; in the same transaction ends the active session whose token hash is `replaces`
/// (the cookie the login request carried) and, when `max_active` is non-zero, the user's least
/// recently used sessions beyond that many.
pub fn create_replacing(
    conn: &mut DbConnection,
    new: &NewSession<'_>,
    replaces: &[String],
    max_active: i64,
) -> QueryResult<Created> {
    super::write_transaction(conn, |conn| {
        let mut created = Created::default();
        for old_hash in replaces {
            if let Some((id, _)) =
                end_by_token_hash(conn, old_hash, RevokeReason::Logout, new.created_at)?
            {
                created.replaced.push(id);
            }
        }
        diesel::insert_into(sessions::table)
            .values(new)
            .execute(conn)?;
        if max_active > 0 {
            let surplus: Vec<String> = active_for_user(new.user_id)
                .order((sessions::last_seen_at.desc(), sessions::created_at.desc()))
                .select(sessions::id)
                .offset(max_active)
                .limit(i64::MAX)
                .load(conn)?;
            revoke_ids(conn, &surplus, RevokeReason::SessionLimit, new.created_at)?;
            created.over_limit = surplus;
        }
        Ok(created)
    })
}

fn active_for_user(
    user_id: i64,
) -> sessions::BoxedQuery<'static, crate::db::connection::MultiBackend> {
    sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::status.eq(SessionStatus::Active))
        .into_boxed()
}

/// Ends the listed sessions that are still active; returns how many changed.
fn revoke_ids(
    conn: &mut DbConnection,
    ids: &[String],
    reason: RevokeReason,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(
        sessions::table
            .filter(sessions::id.eq_any(ids))
            .filter(sessions::status.eq(SessionStatus::Active)),
    )
    .set((
        sessions::status.eq(SessionStatus::Inactive),
        sessions::revoked_reason.eq(reason),
        sessions::revoked_at.eq(now),
    ))
    .execute(conn)
}

/// Ends the active session with this token hash; returns its id and user id if there was one.
pub fn end_by_token_hash(
    conn: &mut DbConnection,
    token_hash: &str,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> QueryResult<Option<(String, i64)>> {
    let found: Option<(String, i64)> = sessions::table
        .filter(sessions::token_hash.eq(token_hash))
        .filter(sessions::status.eq(SessionStatus::Active))
        .select((sessions::id, sessions::user_id))
        .first(conn)
        .optional()?;
    match found {
        Some((id, user_id)) if revoke_ids(conn, std::slice::from_ref(&id), reason, now)? == 1 => {
            Ok(Some((id, user_id)))
        }
        _ => Ok(None),
    }
}

/// Ends one active session of this user; `false` when there is no such active session of theirs.
pub fn revoke_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    id: &str,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let owned: Option<String> = active_for_user(user_id)
        .filter(sessions::id.eq(id.to_owned()))
        .select(sessions::id)
        .first(conn)
        .optional()?;
    match owned {
        Some(id) => Ok(revoke_ids(conn, &[id], reason, now)? == 1),
        None => Ok(false),
    }
}

/// Ends every active session of the user except `keep`; returns the ids it ended.
pub fn revoke_all_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    keep: Option<&str>,
    reason: RevokeReason,
    now: NaiveDateTime,
) -> QueryResult<Vec<String>> {
    super::write_transaction(conn, |conn| {
        let mut query = active_for_user(user_id).select(sessions::id);
        if let Some(keep) = keep {
            query = query.filter(sessions::id.ne(keep.to_owned()));
        }
        let ids: Vec<String> = query.load(conn)?;
        revoke_ids(conn, &ids, reason, now)?;
        Ok(ids)
    })
}

/// The user's usable sessions (active and not past expiry), newest first.
pub fn list_active_for_user(
    conn: &mut DbConnection,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<SessionRow>> {
    active_for_user(user_id)
        .filter(sessions::expires_at.gt(now))
        .order((sessions::created_at.desc(), sessions::id.desc()))
        .select(SessionRow::as_select())
        .load(conn)
}

/// Marks an active session expired (it was found past its `expires_at`).
pub fn mark_expired(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(
        sessions::table
            .filter(sessions::id.eq(id))
            .filter(sessions::status.eq(SessionStatus::Active)),
    )
    .set(sessions::status.eq(SessionStatus::Expired))
    .execute(conn)
}

/// Records use of an active session, and extends its expiry when `expires_at` is given.
pub fn touch(
    conn: &mut DbConnection,
    id: &str,
    last_seen_at: NaiveDateTime,
    expires_at: Option<NaiveDateTime>,
) -> QueryResult<usize> {
    let target = sessions::table
        .filter(sessions::id.eq(id))
        .filter(sessions::status.eq(SessionStatus::Active));
    match expires_at {
        Some(expires_at) => diesel::update(target)
            .set((
                sessions::last_seen_at.eq(last_seen_at),
                sessions::expires_at.eq(expires_at),
            ))
            .execute(conn),
        None => diesel::update(target)
            .set(sessions::last_seen_at.eq(last_seen_at))
            .execute(conn),
    }
}

/// Marks up to `batch` active sessions past their expiry `expired`, oldest expiry first, starting
/// at `from` (the last expiry of the previous batch); returns how many it changed and, when the
/// batch was full, where the next one starts.
/// Walking forward keeps a long purge linear: every batch would otherwise rescan the index
/// entries the previous ones left dead.
pub fn expire_overdue(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    from: Option<NaiveDateTime>,
    batch: i64,
) -> QueryResult<(usize, Option<NaiveDateTime>)> {
    let query = sessions::table
        .filter(sessions::status.eq(SessionStatus::Active))
        .filter(sessions::expires_at.le(now))
        .into_boxed();
    let (ids, next) = next_by_expiry(conn, query, from, batch)?;
    if ids.is_empty() {
        return Ok((0, None));
    }
    let changed = diesel::update(
        sessions::table
            .filter(sessions::id.eq_any(ids))
            .filter(sessions::status.eq(SessionStatus::Active))
            .filter(sessions::expires_at.le(now)),
    )
    .set(sessions::status.eq(SessionStatus::Expired))
    .execute(conn)?;
    Ok((changed, next))
}

/// The two kinds of ended session a purge deletes, each walked on its own so that both walks
/// follow the `(status, expires_at)` index in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Logged out or revoked: dead once revoked (or last used, for rows from before `revoked_at`
    /// existed) before the cutoff.
    Inactive,
    /// Past expiry: dead once their expiry is before the cutoff.
    Expired,
}

/// Deletes up to `batch` sessions of one `kind` that ended before `cutoff`, in expiry order from
/// `from` (the last expiry of the previous batch); returns how many it deleted and, when the batch
/// was full, where the next one starts (`None`: nothing left).
/// One kind at a time on the `(status, expires_at)` index keeps every batch a short index range:
/// a single query for both kinds makes SQLite merge two index scans and sort everything that
/// matches, every batch (a million dead rows then took 23 minutes on SQLite instead of 6).
pub fn delete_ended_before(
    conn: &mut DbConnection,
    kind: Ended,
    cutoff: NaiveDateTime,
    from: Option<NaiveDateTime>,
    batch: i64,
) -> QueryResult<(usize, Option<NaiveDateTime>)> {
    let query = match kind {
        Ended::Inactive => sessions::table
            .filter(sessions::status.eq(SessionStatus::Inactive))
            .filter(
                sessions::revoked_at.lt(cutoff).or(sessions::revoked_at
                    .is_null()
                    .and(sessions::last_seen_at.lt(cutoff))),
            )
            .into_boxed(),
        Ended::Expired => sessions::table
            .filter(sessions::status.eq(SessionStatus::Expired))
            .filter(sessions::expires_at.lt(cutoff))
            .into_boxed(),
    };
    let (ids, next) = next_by_expiry(conn, query, from, batch)?;
    if ids.is_empty() {
        return Ok((0, None));
    }
    // Only ended rows are listed, and ended rows never come back to life, so the ids alone are
    // enough: a row another purger deleted meanwhile is simply not deleted twice.
    let deleted = diesel::delete(sessions::table.filter(sessions::id.eq_any(ids))).execute(conn)?;
    Ok((deleted, next))
}

/// The ids of the next `batch` rows of `query` in expiry order from `from`, and where the batch
/// after them starts (`None` when this one was not full). Ties are safe: the caller changes every
/// row it is given so that `query` no longer matches it, so starting again at the last expiry
/// (inclusive) never returns a row twice.
fn next_by_expiry(
    conn: &mut DbConnection,
    mut query: sessions::BoxedQuery<'static, crate::db::connection::MultiBackend>,
    from: Option<NaiveDateTime>,
    batch: i64,
) -> QueryResult<(Vec<String>, Option<NaiveDateTime>)> {
    if let Some(from) = from {
        query = query.filter(sessions::expires_at.ge(from));
    }
    let rows: Vec<(String, NaiveDateTime)> = query
        .order(sessions::expires_at.asc())
        .select((sessions::id, sessions::expires_at))
        .limit(batch)
        .load(conn)?;
    let next = match rows.last() {
        Some((_, last)) if rows.len() as i64 >= batch => Some(*last),
        _ => None,
    };
    Ok((rows.into_iter().map(|(id, _)| id).collect(), next))
}

/// Ends up to `batch` active sessions of anyone; returns how many it ended.
pub fn revoke_any_batch(
    conn: &mut DbConnection,
    reason: RevokeReason,
    now: NaiveDateTime,
    batch: i64,
) -> QueryResult<usize> {
    let ids: Vec<String> = sessions::table
        .filter(sessions::status.eq(SessionStatus::Active))
        .select(sessions::id)
        .limit(batch)
        .load(conn)?;
    revoke_ids(conn, &ids, reason, now)
}

/// How many sessions are active and not past expiry.
pub fn count_active(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<i64> {
    sessions::table
        .filter(sessions::status.eq(SessionStatus::Active))
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)
}
