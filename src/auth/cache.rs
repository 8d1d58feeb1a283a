//! Verified sessions kept in memory, so that the common request (an active session, nothing to
//! write) needs no database round trip.
//!
//! The database stays the authority. An entry is only a copy of a row that was active when read;
//! [`crate::auth::session`] still judges it on every use (expiry, fingerprint) and goes back to the
//! database for anything but a plain "accept". What keeps the copy honest is eviction:
//!
//! * this instance evicts a user's entries as soon as it ends one of their sessions;
//! * every other change (another instance, the CLI, an operator's SQL) reaches
//!   [`crate::auth::sync`] through triggers on `sessions` and `users`, which evicts here too;
//! * while that channel is down (PostgreSQL unreachable, say) the cache is switched off and every
//!   request reads the database, since a revocation elsewhere could go unseen;
//! * the channel must also prove it works, renewing a short lease ([`SessionCache::renew`]): a
//!   connection that hangs without failing (a network partition) or a stalled thread lets the lease
//!   run out, and the cache stops answering by itself.
//!
//! Fills race with evictions: a request can read a row just before it is revoked and try to store
//! it just after the eviction ran. Every eviction bumps a generation number, and a fill is dropped
//! when the generation moved between the read and the store ([`SessionCache::ticket`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use crate::db::sessions::SessionRow;
use crate::db::users::Account;

/// A session row as read from the database, with its user.
#[derive(Debug, Clone)]
pub struct CachedSession {
    pub session: SessionRow,
    pub user: Account,
}

/// The generation number at the start of a database read; see [`SessionCache::insert`].
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

#[derive(Default)]
struct Entries {
    by_hash: HashMap<String, Arc<CachedSession>>,
    /// Token hashes per user, for evicting all of a user's sessions at once. May name hashes that
    /// are gone already; those are skipped.
    by_user: HashMap<i64, Vec<String>>,
}

/// Bounded map from token hash to verified session.
pub struct SessionCache {
    entries: RwLock<Entries>,
    generation: AtomicU64,
    /// Whether entries may be used and stored: the invalidation channel is up.
    live: AtomicBool,
    /// Milliseconds after `epoch` until which the channel is known to work.
    lease_until: AtomicU64,
    epoch: Instant,
    capacity: usize,
}

impl SessionCache {
    /// A cache of at most `capacity` sessions (0 turns caching off). It starts switched off until
    /// the invalidation channel reports that it is listening ([`Self::set_live`]).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: RwLock::new(Entries::default()),
            generation: AtomicU64::new(0),
            live: AtomicBool::new(false),
            lease_until: AtomicU64::new(0),
            epoch: Instant::now(),
            capacity,
        }
    }

    pub fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Whether lookups can currently be answered from memory.
    pub fn is_live(&self) -> bool {
        self.capacity > 0
            && self.live.load(Ordering::Acquire)
            && self.millis() < self.lease_until.load(Ordering::Acquire)
    }

    /// The channel has just shown that it works (everything sent before now has been read): the
    /// cache may answer for `lease` more.
    pub fn renew(&self, lease: Duration) {
        let until = self.millis().saturating_add(lease.as_millis() as u64);
        self.lease_until.fetch_max(until, Ordering::AcqRel);
    }

    fn millis(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Switches the cache on or off; either way it starts empty, since nothing seen before the
    /// switch can be trusted after it. Switching on does not renew the lease.
    pub fn set_live(&self, live: bool) {
        self.live.store(live, Ordering::Release);
        // After the store: a fill that read under an older ticket is refused by the bump.
        self.clear();
    }

    /// The session stored for this token hash, if the cache is live and has it.
    pub fn get(&self, token_hash: &str) -> Option<Arc<CachedSession>> {
        if !self.is_live() {
            return None;
        }
        self.read().by_hash.get(token_hash).cloned()
    }

    /// Take before reading a session from the database, hand to [`Self::insert`] afterwards.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.generation.load(Ordering::Acquire))
    }

    /// Stores a session read under `ticket`, unless an eviction happened since (the row may be
    /// stale) or the cache is off.
    pub fn insert(&self, ticket: Ticket, token_hash: &str, entry: CachedSession) {
        if !self.is_live() {
            return;
        }
        let mut entries = self.write();
        // Checked under the write lock: evictions bump the generation while holding it.
        if self.generation.load(Ordering::Acquire) != ticket.0 {
            return;
        }
        if entries.by_hash.len() >= self.capacity {
            entries.shed();
        }
        let user_id = entry.user.id;
        if entries
            .by_hash
            .insert(token_hash.to_owned(), Arc::new(entry))
            .is_none()
        {
            entries
                .by_user
                .entry(user_id)
                .or_default()
                .push(token_hash.to_owned());
        }
    }

    /// Drops every cached session of these users.
    pub fn forget_users(&self, user_ids: &[i64]) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        for user_id in user_ids {
            if let Some(hashes) = entries.by_user.remove(user_id) {
                for hash in hashes {
                    entries.by_hash.remove(&hash);
                }
            }
        }
    }

    /// Drops the session with this token hash.
    pub fn forget_token(&self, token_hash: &str) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(entry) = entries.by_hash.remove(token_hash) {
            let user_id = entry.user.id;
            if let Some(hashes) = entries.by_user.get_mut(&user_id) {
                hashes.retain(|h| h != token_hash);
                if hashes.is_empty() {
                    entries.by_user.remove(&user_id);
                }
            }
        }
    }

    /// Drops everything.
    pub fn clear(&self) {
        let mut entries = self.write();
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.by_hash.clear();
        entries.by_user.clear();
    }

    pub fn len(&self) -> usize {
        self.read().by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // A panic while holding the lock cannot leave the maps inconsistent in a way that matters
    // (at worst a stale index entry), so a poisoned lock is used as it is.
    fn read(&self) -> RwLockReadGuard<'_, Entries> {
        self.entries.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Entries> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }
}

impl Entries {
    /// Makes room when full: drops every eighth entry in the map's (effectively random) order, so
    /// the cost of eviction is spread over many inserts.
    fn shed(&mut self) {
        let mut n = 0usize;
        self.by_hash.retain(|_, _| {
            n += 1;
            !n.is_multiple_of(8)
        });
        let by_hash = &self.by_hash;
        self.by_user.retain(|_, hashes| {
            hashes.retain(|h| by_hash.contains_key(h));
            !hashes.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDateTime;

    fn entry(user_id: i64, session_id: &str) -> CachedSession {
        let t = NaiveDateTime::default();
        CachedSession {
            session: SessionRow {
                id: session_id.into(),
                user_id,
                status: crate::db::sessions::SessionStatus::Active,
                client_fingerprint: "fp".into(),
                created_at: t,
                expires_at: t,
                last_seen_at: t,
                user_agent: None,
                ip: None,
            },
            user: Account {
                id: user_id,
                username: format!("user{user_id}"),
                created_at: t,
            },
        }
    }

    fn live(capacity: usize) -> SessionCache {
        let cache = SessionCache::new(capacity);
        cache.set_live(true);
        cache.renew(Duration::from_secs(3600));
        cache
    }

    #[test]
    fn nothing_is_served_or_stored_until_live() {
        let cache = SessionCache::new(10);
        cache.insert(cache.ticket(), "h1", entry(1, "s1"));
        assert!(cache.get("h1").is_none());
        cache.set_live(true);
        cache.renew(Duration::from_secs(60));
        cache.insert(cache.ticket(), "h1", entry(1, "s1"));
        assert_eq!(cache.get("h1").unwrap().session.id, "s1");
    }

    #[test]
    fn an_unrenewed_lease_stops_the_cache() {
        let cache = SessionCache::new(10);
        cache.set_live(true);
        assert!(!cache.is_live(), "on, but never shown to work");
        cache.renew(Duration::from_millis(30));
        cache.insert(cache.ticket(), "h1", entry(1, "s1"));
        assert!(cache.get("h1").is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get("h1").is_none(), "lease ran out");
        cache.renew(Duration::from_millis(30));
        assert!(cache.get("h1").is_some(), "same channel, nothing missed");
    }

    #[test]
    fn going_down_empties_the_cache() {
        let cache = live(10);
        cache.insert(cache.ticket(), "h1", entry(1, "s1"));
        cache.set_live(false);
        assert!(cache.get("h1").is_none());
        cache.set_live(true);
        assert!(cache.get("h1").is_none(), "entries from before the gap");
    }

    #[test]
    fn zero_capacity_is_off() {
        let cache = live(0);
        cache.insert(cache.ticket(), "h1", entry(1, "s1"));
        assert!(cache.get("h1").is_none());
        assert!(!cache.is_live());
    }

    #[test]
    fn forgetting_a_user_drops_all_their_sessions_only() {
        let cache = live(10);
        cache.insert(cache.ticket(), "a1", entry(1, "s1"));
        cache.insert(cache.ticket(), "a2", entry(1, "s2"));
        cache.insert(cache.ticket(), "b1", entry(2, "s3"));
        cache.forget_users(&[1]);
        assert!(cache.get("a1").is_none());
        assert!(cache.get("a2").is_none());
        assert!(cache.get("b1").is_some());
        cache.forget_token("b1");
        assert!(cache.is_empty());
    }

    #[test]
    fn a_fill_that_raced_an_eviction_is_dropped() {
        let cache = live(10);
        let ticket = cache.ticket();
        // The row is read here; meanwhile another request revokes some session.
        cache.forget_users(&[7]);
        cache.insert(ticket, "h1", entry(1, "s1"));
        assert!(cache.get("h1").is_none());
        cache.insert(cache.ticket(), "h1", entry(1, "s1"));
        assert!(cache.get("h1").is_some());
    }

    #[test]
    fn a_full_cache_sheds_entries_and_stays_bounded() {
        let cache = live(64);
        for i in 0..1000 {
            cache.insert(cache.ticket(), &format!("h{i}"), entry(i % 10, "s"));
        }
        assert!(cache.len() <= 64);
        assert!(cache.get("h999").is_some(), "the newest entry is kept");
        // The per-user index only names hashes that are still cached (after a shed).
        cache.forget_users(&(0..10).collect::<Vec<_>>());
        assert!(cache.is_empty());
    }
}
