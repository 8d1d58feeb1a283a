//! Table definitions shared by both backends; only types `MultiConnection` supports (BigInt, Text,
//! Timestamp), so UUIDs are text and times are UTC `NaiveDateTime`.

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        /// Lower-cased `username`: the unique key that makes names case-insensitive.
        username_key -> Text,
        password_hash -> Text,
        created_at -> Timestamp,
        /// Set by `tessera user disable`: the user cannot log in and has no sessions.
        disabled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> BigInt,
        token_hash -> Text,
        status -> Text,
        client_fingerprint -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        last_seen_at -> Timestamp,
        user_agent -> Nullable<Text>,
        ip -> Nullable<Text>,
        revoked_reason -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Failed logins, counted per (username, client IP) and per IP for throttling; a success
    /// sets `cleared` on its pair's rows.
    login_failures (id) {
        id -> BigInt,
        username_key -> Text,
        ip -> Text,
        created_at -> Timestamp,
        cleared -> Integer,
    }
}

diesel::table! {
    /// The audit trail.
    auth_events (id) {
        id -> BigInt,
        user_id -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
        kind -> Text,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// Registrations per client address (an IPv6 client's /64), pending or done, for the
    /// registration throttle.
    register_attempts (id) {
        id -> BigInt,
        ip_key -> Text,
        created_at -> Timestamp,
        done -> Bool,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    login_failures,
    auth_events,
    register_attempts
);

diesel::table! {
    /// SQLite only: the user ids whose sessions changed, appended by triggers and polled by every
    /// instance to evict its cached sessions (PostgreSQL uses LISTEN/NOTIFY instead).
    session_invalidations (seq) {
        seq -> BigInt,
        user_id -> BigInt,
        created_at -> BigInt,
    }
}
