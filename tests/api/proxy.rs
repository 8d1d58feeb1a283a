//! A TCP forwarder in front of PostgreSQL that a test can take down and bring back: a database
//! outage without stopping the machine's PostgreSQL (which other tests use).
//!
//! While up, every accepted connection is forwarded to the upstream address. [`Proxy::down`] cuts
//! every forwarded connection and from then on closes each new one as soon as it is accepted (a
//! client sees "server closed the connection unexpectedly", as from a database going away);
//! [`Proxy::up`] forwards again. The listening port stays the same throughout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (`host:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let (up, watcher) = watch::channel(true);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                if !*watcher.borrow() {
                    drop(client);
                    continue;
                }
                tokio::spawn(forward(client, upstream.clone(), watcher.clone()));
            }
        });
        Proxy { addr, up, accept }
    }

    /// Cuts every forwarded connection and refuses new ones.
    pub fn down(&self) {
        self.up.send_replace(false);
    }

    /// Forwards new connections again.
    pub fn up(&self) {
        self.up.send_replace(true);
    }

    /// `url` (a `postgres://` URL) with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).expect("a PostgreSQL URL");
        url.set_host(Some("127.0.0.1")).expect("a host");
        url.set_port(Some(self.addr.port())).expect("a port");
        url.to_string()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.up.send_replace(false);
        self.accept.abort();
    }
}

/// `host:port` of a `postgres://` URL (5432 when it names no port).
pub fn upstream_of(url: &str) -> String {
    let url = url::Url::parse(url).expect("a PostgreSQL URL");
    let host = url.host_str().expect("a host").to_owned();
    format!("{host}:{}", url.port().unwrap_or(5432))
}

async fn forward(mut client: TcpStream, upstream: String, mut up: watch::Receiver<bool>) {
    let Ok(mut server) = TcpStream::connect(&upstream).await else {
        return;
    };
    tokio::select! {
        _ = copy_bidirectional(&mut client, &mut server) => {}
        _ = up.wait_for(|up| !*up) => {}
    }
}
