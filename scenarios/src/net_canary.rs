//! `net-canary`: the network fault model's self-test. A client host sends numbered pings
//! to a server host over TCP and retries a ping whose answer does not come within its
//! timeout, on a new connection, without a request id: the planted bug is that a ping held
//! by the network (a partition, a one-way link, a mute server or extra latency longer than
//! the timeout) and then delivered is received twice. Only a network fault reveals it; every
//! sweep must find it, shrink it to the network fault alone and replay it. If a sweep of the
//! net-canary stops failing, the network fault model is broken.

use std::time::Duration;

use faultline_sim::faults::FaultModel;
use faultline_sim::net::NetModel;
use faultline_sim::{InvariantDoc, Scenario};

/// The net-canary scenario.
pub struct NetCanary;

const INVARIANTS: &[InvariantDoc] = &[
    InvariantDoc {
        name: "exactly-once",
        checks: "the server received each ping once; does not check the order of arrival",
    },
    InvariantDoc {
        name: "liveness:pings-finish",
        checks: "after the network heals, every ping is answered within a bound",
    },
];

impl Scenario for NetCanary {
    fn name(&self) -> &'static str {
        "net-canary"
    }

    fn summary(&self) -> &'static str {
        "harness self-test: retries without a request id duplicate a ping the network held (must always be found)"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        INVARIANTS
    }

    fn fault_model(&self) -> FaultModel {
        FaultModel::default()
    }

    fn net_model(&self) -> NetModel {
        let mut model = NetModel::default();
        model.faults = 2;
        model.max_start = Duration::from_millis(100);
        model.max_duration = Duration::from_millis(800);
        model.max_extra_latency = Duration::from_millis(80);
        model
    }

    #[cfg(madsim)]
    fn run(
        &self,
        world: faultline_sim::world::World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(simulated::run(world))
    }
}

#[cfg(madsim)]
mod simulated {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use faultline_sim::world::World;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    /// Pings the client sends.
    const PINGS: u64 = 5;
    /// How long the client waits for an answer before it retries.
    const TIMEOUT: Duration = Duration::from_millis(40);
    /// When the network heals.
    const FAULT_PHASE: Duration = Duration::from_millis(600);
    /// How long after healing the pings must be done.
    const BOUND: Duration = Duration::from_secs(5);
    const PORT: u16 = 7000;

    pub async fn run(world: World) {
        let received = Arc::new(Mutex::new(Vec::new()));
        let seen = received.clone();
        let server = world.add_host("server", move || serve(seen.clone()));
        let done = Arc::new(AtomicBool::new(false));
        let (client_world, finished) = (world.clone(), done.clone());
        let address = SocketAddr::new(server, PORT);
        world.add_host("client", move || {
            ping_all(client_world.clone(), address, finished.clone())
        });
        tokio::time::sleep(FAULT_PHASE).await;
        world.heal();
        let deadline = tokio::time::Instant::now() + BOUND;
        while !done.load(Ordering::SeqCst) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Let held packets arrive now that the network has healed.
        tokio::time::sleep(Duration::from_millis(100)).await;
        if !done.load(Ordering::SeqCst) {
            world.fail_liveness("pings-finish", "the pings were not answered after healing");
            return;
        }
        let received = received.lock().unwrap().clone();
        world.event("received", format!("{received:?}"));
        for ping in 0..PINGS {
            let times = received.iter().filter(|p| **p == ping).count();
            if times != 1 {
                world.fail(
                    "exactly-once",
                    format!("ping {ping} was received {times} times"),
                );
                return;
            }
        }
    }

    async fn serve(received: Arc<Mutex<Vec<u64>>>) {
        let listener = TcpListener::bind(("0.0.0.0", PORT)).await.expect("bind");
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let received = received.clone();
            tokio::spawn(async move {
                let (read, mut write) = tokio::io::split(stream);
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Some(ping) = line.strip_prefix("ping ").and_then(|n| n.parse().ok()) else {
                        continue;
                    };
                    received.lock().unwrap().push(ping);
                    let _ = write.write_all(format!("pong {ping}\n").as_bytes()).await;
                    let _ = write.flush().await;
                }
            });
        }
    }

    async fn ping_all(world: World, address: SocketAddr, done: Arc<AtomicBool>) {
        for ping in 0..PINGS {
            let mut attempt = 0;
            while !ping_once(address, ping).await {
                attempt += 1;
                world.event("retry", format!("ping {ping} attempt {attempt}"));
            }
            world.event("pong", ping);
        }
        done.store(true, Ordering::SeqCst);
    }

    /// One attempt on a new connection; whether the answer came in time.
    async fn ping_once(address: SocketAddr, ping: u64) -> bool {
        let attempt = async {
            let mut stream = TcpStream::connect(address).await.ok()?;
            stream
                .write_all(format!("ping {ping}\n").as_bytes())
                .await
                .ok()?;
            stream.flush().await.ok()?;
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).await.ok()?;
            (line.trim() == format!("pong {ping}")).then_some(())
        };
        tokio::time::timeout(TIMEOUT, attempt)
            .await
            .ok()
            .flatten()
            .is_some()
    }
}
