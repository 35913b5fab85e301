//! A plain stress loop for a fault at one moment of a multi-node exchange, for comparison with
//! the simulator: real TCP on loopback through a chaos proxy that cuts connections at random
//! instants (what toxiproxy's `reset_peer` or a flaky load balancer does to a real fetch).
//!
//! One source serves its repository behind the proxy, and a store names it in one scope.
//! Each iteration commits a new revision of ENTRIES entries of 256 bytes, then syncs while
//! the proxy drops every connection it relays at an instant drawn uniformly over the time a
//! sync takes (measured before the loop, as the median of 20 un-faulted syncs: a generous
//! loop that never cuts before the sync started or after it ended). After the sync it checks
//! what mirror-atomic checks: the mirror holds exactly the entries of the revision it names.
//!
//! Prints the first violation's iteration and time; with COUNT 1 it goes on and prints how
//! many iterations of all broke it, and how many cuts landed inside a fetch's reply at all.
//!
//! `cargo run --release --example stress_fetch_reset -- [ITERATIONS] [ENTRIES] [COUNT]`
//! (default 5000, 8, 0)
//! `ci/stress-mutant NAME 5000 stress_fetch_reset` runs it on a planted bug.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use faultline::sources::{self, Repository, Revision};
use faultline::{Engine, SyncSettings};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[path = "common/stress.rs"]
mod support;
use support::{Instants, Sightings};

const SOURCE: &str = "source";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let iterations = support::arg(0, 5_000, "ITERATIONS");
    let entries = support::arg(1, 8, "ENTRIES");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (engine, _) = Engine::open(dir.path(), "syncer").await.expect("open");
    let repository = Repository::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let source = listener.local_addr().unwrap();
    tokio::spawn(sources::serve(listener, repository.clone()));
    let proxy = Proxy::start(source).await;
    engine
        .create_scope("scope", SOURCE, proxy.address)
        .await
        .expect("the scope");
    let mut settings = SyncSettings::with_concurrency(1);
    settings.timeout = Duration::from_secs(2);
    // The time a sync takes, un-faulted.
    let mut times = Vec::new();
    for number in 0..20 {
        repository.commit(revision(number, entries));
        let started = Instant::now();
        engine.sync_all(settings).await.expect("a sync");
        times.push(started.elapsed());
    }
    times.sort();
    let whole = times[times.len() / 2];
    println!(
        "a sync of {entries} entries takes {:.0} us (median of 20); cuts are drawn uniformly over it",
        whole.as_secs_f64() * 1e6
    );
    let mut sightings = Sightings::new(support::flag(2));
    let mut instants = Instants::default();
    let cut_mid_reply = proxy.cut_mid_reply.clone();
    for iteration in 1..=iterations {
        repository.commit(revision(100 + iteration, entries));
        let at = instants.below(whole);
        let cut = proxy.cut.clone();
        let chaos = tokio::spawn(async move {
            tokio::time::sleep(at).await;
            cut.send_modify(|generation| *generation += 1);
        });
        let _ = engine.sync_all(settings).await;
        let _ = chaos.await;
        let mirror = engine.mirror(SOURCE).await.expect("the mirror");
        let broken = mirror.and_then(|mirror| {
            let expected = repository.revision(mirror.revision);
            (expected.as_ref() != Some(&mirror.entries)).then(|| {
                format!(
                    "mirror-atomic: the mirror says revision {} but holds {} of its {} entries",
                    mirror.revision,
                    mirror.entries.len(),
                    expected.map_or(0, |e| e.len())
                )
            })
        });
        let repair = broken.is_some();
        if sightings.saw(iteration, broken) {
            return;
        }
        if repair {
            // The next iteration starts from a whole mirror.
            let _ = engine.sync_all(settings).await;
        }
    }
    let cuts = cut_mid_reply.load(Ordering::Relaxed);
    let more = format!(
        "; {cuts} cuts landed inside a reply ({:.3}%)",
        100.0 * cuts as f64 / iterations as f64
    );
    sightings.finish(iterations, &more);
}

/// Revision `number`: `entries` entries of 256 bytes.
fn revision(number: u64, entries: u64) -> Revision {
    (0..entries)
        .map(|e| (format!("entry-{e}"), vec![(number + e) as u8; 256]))
        .collect()
}

/// A TCP proxy to one address that drops every connection it relays when told to.
struct Proxy {
    address: SocketAddr,
    /// Bumped to cut every connection open at that moment.
    cut: Arc<watch::Sender<u64>>,
    /// Cuts that found a reply part-way relayed (some bytes of it sent, the last not yet).
    cut_mid_reply: Arc<AtomicU64>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(0u64);
        let cut = Arc::new(cut);
        let cut_mid_reply = Arc::new(AtomicU64::new(0));
        let (sender, counter) = (cut.clone(), cut_mid_reply.clone());
        tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let (cuts, counter) = (sender.subscribe(), counter.clone());
                tokio::spawn(relay(client, target, cuts, counter));
            }
        });
        Proxy {
            address,
            cut,
            cut_mid_reply,
        }
    }
}

/// Relays one connection until either side closes or a cut comes; a cut drops both sockets.
async fn relay(
    client: TcpStream,
    target: SocketAddr,
    mut cuts: watch::Receiver<u64>,
    cut_mid_reply: Arc<AtomicU64>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client_read, mut client_write) = tokio::io::split(client);
    let (mut server_read, mut server_write) = tokio::io::split(server);
    let upstream = async {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = client_read.read(&mut buffer).await {
            if server_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    let relayed = AtomicU64::new(0);
    let finished = std::sync::atomic::AtomicBool::new(false);
    let downstream = async {
        let mut buffer = [0u8; 4096];
        while let Ok(n @ 1..) = server_read.read(&mut buffer).await {
            relayed.fetch_add(n as u64, Ordering::Relaxed);
            if buffer[..n].ends_with(b"END\n") {
                finished.store(true, Ordering::Relaxed);
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = async { tokio::join!(upstream, downstream) } => {}
        _ = cuts.changed() => {
            if relayed.load(Ordering::Relaxed) > 0 && !finished.load(Ordering::Relaxed) {
                cut_mid_reply.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
