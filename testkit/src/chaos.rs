//! A TCP proxy that breaks on demand (after crates.io's chaos proxy): put it
//! between a stage and PostgreSQL, then cut every connection and refuse new
//! ones for a while, as a database failover or a network partition would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy; dropping it stops accepting.
#[derive(Debug)]
pub struct ChaosProxy {
    addr: SocketAddr,
    broken: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
    cuts: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl ChaosProxy {
    /// Listen on a free loopback port and forward to `target`.
    pub async fn start(target: SocketAddr) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local addr");
        let broken = Arc::new(AtomicBool::new(false));
        let (generation, _) = watch::channel(0u64);
        let cuts = Arc::new(AtomicU64::new(0));
        let (b, g) = (broken.clone(), generation.clone());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if b.load(Ordering::SeqCst) {
                    drop(client); // refused while broken
                    continue;
                }
                let mut cut = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut.changed() => {} // dropping both ends resets them
                    }
                });
            }
        });
        ChaosProxy {
            addr,
            broken,
            generation,
            cuts,
            accept,
        }
    }

    /// The address clients should connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cut every open connection and refuse new ones until [`Self::restore`].
    pub fn break_all(&self) {
        self.broken.store(true, Ordering::SeqCst);
        self.cuts.fetch_add(1, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Accept connections again.
    pub fn restore(&self) {
        self.broken.store(false, Ordering::SeqCst);
    }
}

impl Drop for ChaosProxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.generation.send_modify(|g| *g += 1);
    }
}

/// The `host:port` of a `postgres://user@host:port/db` URL, and the URL with
/// that address replaced.
pub fn reroute_postgres_url(url: &str, via: SocketAddr) -> (SocketAddr, String) {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (userinfo, hostpath) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (hostport, path) = hostpath.split_once('/').unwrap_or((hostpath, ""));
    let target: SocketAddr = hostport
        .replace("localhost", "127.0.0.1")
        .parse()
        .unwrap_or_else(|_| {
            panic!("the test database URL needs an explicit IP:port, got {hostport}")
        });
    let user = userinfo.map(|u| format!("{u}@")).unwrap_or_default();
    (target, format!("{scheme}://{user}{via}/{path}"))
}
