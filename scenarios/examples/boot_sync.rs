//! The boot sync of the delete-vs-fetch incident in simulated time: one server syncs 100
//! sources at concurrency 1 and at 10. Every link has a fixed 5 ms latency and every fetch
//! takes a stated transfer time at the source; prints the simulated time of each pass and
//! their ratio (the incident: about 20 minutes down to a couple).
//!
//! `cargo run --release -p faultline-scenarios --example boot_sync --target-dir target/sim
//!  --config "build.rustflags=['--cfg','madsim']" -- [transfer_ms]`

#[cfg(madsim)]
fn main() {
    let transfer = std::env::args()
        .nth(1)
        .map_or(Ok(1000), |t| t.parse::<u64>())
        .expect("transfer time in ms, a whole number");
    println!(
        "boot sync of {SOURCES} sources, 5 ms per packet, {transfer} ms transfer per fetch (simulated time):"
    );
    let mut times = Vec::new();
    for concurrency in [1, 10] {
        let elapsed = boot_sync(concurrency, std::time::Duration::from_millis(transfer));
        println!("  N = {concurrency:>2}: {:>8.1} s", elapsed.as_secs_f64());
        times.push(elapsed.as_secs_f64());
    }
    println!("  ratio N=1 / N=10: {:.1}x", times[0] / times[1]);
}

#[cfg(madsim)]
const SOURCES: usize = 100;

#[cfg(madsim)]
fn boot_sync(concurrency: usize, transfer: std::time::Duration) -> std::time::Duration {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::Duration;

    use faultline::sources::{self, Repository};
    use faultline::{Engine, SyncSettings};

    let mut runtime = madsim::runtime::Runtime::with_seed_and_config(1, madsim::Config::default());
    runtime.set_time_limit(Duration::from_secs(24 * 3600));
    let store = tempfile::tempdir().expect("a temporary directory");
    let dir = store.path().to_owned();
    runtime.block_on(async move {
        let handle = madsim::runtime::Handle::current();
        madsim::net::NetSim::current().update_config(|config| {
            config.send_latency =
                Duration::from_millis(5)..Duration::from_millis(5) + Duration::from_nanos(1);
        });
        let mut addresses = Vec::new();
        for index in 0..SOURCES {
            let ip = IpAddr::V4(Ipv4Addr::new(
                10,
                1,
                (index / 250) as u8,
                (index % 250) as u8 + 1,
            ));
            let repository = Repository::default();
            repository.commit([("README".to_owned(), vec![1; 64])].into());
            handle
                .create_node()
                .name(format!("source-{index}"))
                .ip(ip)
                .init(move || {
                    let repository = repository.clone();
                    async move {
                        let listener = tokio::net::TcpListener::bind(("0.0.0.0", 7000))
                            .await
                            .unwrap();
                        sources::serve_slowly(listener, repository, transfer).await;
                    }
                })
                .build();
            addresses.push(SocketAddr::new(ip, 7000));
        }
        // A node's init may be a future that is not `Send` (the engine's handle is not).
        let result = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (slot, addresses) = (result.clone(), std::sync::Arc::new(addresses));
        handle
            .create_node()
            .name("server")
            .ip(IpAddr::V4(Ipv4Addr::new(10, 2, 0, 1)))
            .init(move || {
                let (slot, addresses, dir) = (slot.clone(), addresses.clone(), dir.clone());
                async move {
                    let (engine, _) = Engine::open(&dir, "server").await.expect("open");
                    for (index, address) in addresses.iter().enumerate() {
                        let name = format!("source-{index}");
                        engine
                            .create_scope(&name, &name, *address)
                            .await
                            .expect("scope");
                    }
                    let mut settings = SyncSettings::with_concurrency(concurrency);
                    settings.timeout = transfer * 2 + Duration::from_secs(1);
                    let started = tokio::time::Instant::now();
                    let report = engine.sync_all(settings).await.expect("sync");
                    assert!(report.failures().is_empty(), "{report:?}");
                    *slot.lock().unwrap() = Some(started.elapsed());
                }
            })
            .build();
        loop {
            if let Some(elapsed) = *result.lock().unwrap() {
                return elapsed;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
}

#[cfg(not(madsim))]
fn main() {
    eprintln!("build with --cfg madsim (the command in this file's header)");
}
