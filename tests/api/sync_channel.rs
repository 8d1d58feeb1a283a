//! Issue 10, item 10: the session cache trusts its notification channel only while the listener
//! hears its own heartbeats. A listener that stops receiving notifications (a pooler in
//! transaction mode, simulated here by a proxy that drops them) turns the cache off within the
//! lease, and `SESSION_SYNC_DATABASE_URL` lets the listener bypass such a pooler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::*;

postgres_tests!(
    a_listener_that_hears_nothing_never_serves_from_the_cache,
    a_listener_that_goes_deaf_stops_the_cache_within_the_lease,
    the_listener_can_bypass_a_pooler,
);

/// A TCP proxy to PostgreSQL that passes everything, or (once `deaf` is set) drops every
/// `NotificationResponse` the server sends: queries still work, LISTEN silently does not.
struct NotificationDropper {
    port: u16,
    deaf: Arc<AtomicBool>,
}

impl NotificationDropper {
    async fn start(target: (String, u16), deaf: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding");
        let port = listener.local_addr().expect("address").port();
        let deaf = Arc::new(AtomicBool::new(deaf));
        let flag = Arc::clone(&deaf);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect((target.0.as_str(), target.1)).await else {
                    continue;
                };
                let (mut client_read, mut client_write) = client.into_split();
                let (mut server_read, mut server_write) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                    let _ = server_write.shutdown().await;
                });
                let flag = Arc::clone(&flag);
                tokio::spawn(async move {
                    // Server messages: a type byte, a 4-byte length (itself included), the body.
                    // sslmode=disable and gssencmode=disable: no one-byte answer comes first.
                    loop {
                        let mut header = [0u8; 5];
                        if server_read.read_exact(&mut header).await.is_err() {
                            break;
                        }
                        let length =
                            u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                        let mut body = vec![0u8; (length as usize).saturating_sub(4)];
                        if server_read.read_exact(&mut body).await.is_err() {
                            break;
                        }
                        if header[0] == b'A' && flag.load(Ordering::SeqCst) {
                            continue;
                        }
                        if client_write.write_all(&header).await.is_err()
                            || client_write.write_all(&body).await.is_err()
                        {
                            break;
                        }
                    }
                    let _ = client_write.shutdown().await;
                });
            }
        });
        Self { port, deaf }
    }

    /// `url` with its host and port replaced by the proxy's.
    fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(self.port)).expect("a port");
        url.query_pairs_mut()
            .append_pair("sslmode", "disable")
            .append_pair("gssencmode", "disable");
        url.to_string()
    }
}

fn server_of(url: &str) -> (String, u16) {
    let url = url::Url::parse(url).expect("a URL");
    (
        url.host_str().unwrap_or("127.0.0.1").to_owned(),
        url.port().unwrap_or(5432),
    )
}

/// Ends `token`'s session behind the server's back, as another instance would.
fn revoke_by_sql(app: &TestApp, token: &str) {
    let changed = app.db().execute(
        "UPDATE sessions SET status = 'inactive' WHERE token_hash = ?",
        &[text(&sha256_hex(token))],
    );
    assert_eq!(changed, 1);
}

async fn a_listener_that_hears_nothing_never_serves_from_the_cache(backend: Backend) {
    let db = TestDb::create(backend);
    let proxy = NotificationDropper::start(server_of(&db.app_url()), true).await;
    let through_proxy = proxy.url_for(&db.app_url());
    let app = spawn_app_on(db, &[("DATABASE_URL", &through_proxy)]).await;
    let token = app.user_session("alice").await;
    for _ in 0..5 {
        app.me_with(&token, &[]).await.expect(200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    revoke_by_sql(&app, &token);
    // No notification can arrive, so nothing may have been answered from memory.
    app.me_with(&token, &[]).await.problem(401);
}

async fn a_listener_that_goes_deaf_stops_the_cache_within_the_lease(backend: Backend) {
    let db = TestDb::create(backend);
    let proxy = NotificationDropper::start(server_of(&db.app_url()), false).await;
    let through_proxy = proxy.url_for(&db.app_url());
    let app = spawn_app_on(db, &[("DATABASE_URL", &through_proxy)]).await;
    let token = app.user_session("alice").await;
    let other = app.login_token("alice", PASSWORD).await;
    // While notifications flow, a revocation is heard.
    app.me_with(&other, &[]).await.expect(200);
    app.me_with(&other, &[]).await.expect(200);
    revoke_by_sql(&app, &other);
    assert_refused_soon(&app, &other).await;

    app.me_with(&token, &[]).await.expect(200);
    app.me_with(&token, &[]).await.expect(200);
    proxy.deaf.store(true, Ordering::SeqCst);
    // The lease (1 s) runs out without an echoed heartbeat.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    revoke_by_sql(&app, &token);
    app.me_with(&token, &[]).await.problem(401);
}

async fn the_listener_can_bypass_a_pooler(backend: Backend) {
    let db = TestDb::create(backend);
    let proxy = NotificationDropper::start(server_of(&db.app_url()), true).await;
    let through_proxy = proxy.url_for(&db.app_url());
    let mut direct = url::Url::parse(&db.app_url()).expect("a URL");
    direct
        .query_pairs_mut()
        .append_pair("application_name", "tessera-direct-sync");
    let app = spawn_app_on(
        db,
        &[
            ("DATABASE_URL", &through_proxy),
            ("SESSION_SYNC_DATABASE_URL", direct.as_str()),
        ],
    )
    .await;
    let token = app.user_session("alice").await;
    let listeners = app.db().count(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'tessera-direct-sync'",
        &[],
    );
    assert_eq!(
        listeners, 1,
        "the listener does not use SESSION_SYNC_DATABASE_URL"
    );
    app.me_with(&token, &[]).await.expect(200);
    app.me_with(&token, &[]).await.expect(200);
    revoke_by_sql(&app, &token);
    assert_refused_soon(&app, &token).await;
}
