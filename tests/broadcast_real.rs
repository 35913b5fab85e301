//! Real-mode tests of the broadcaster and its workers: loopback TCP on multi-threaded tokio,
//! real SQLite files, a broadcaster that is stopped and started again on the same port.
#![cfg(not(madsim))]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faultline::broadcast::{self, BroadcasterSettings};
use faultline::workers::{OnDisconnect, Worker, WorkerSettings};
use faultline::{Engine, Item};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::task::JoinHandle;

/// Serves a broadcaster on `address` (port 0: any); returns the address and its task.
async fn broadcaster(address: &str) -> (SocketAddr, JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind(address).await.unwrap();
    let address = listener.local_addr().unwrap();
    let task = tokio::spawn(broadcast::serve(
        listener,
        BroadcasterSettings::default(),
        None,
    ));
    (address, task)
}

fn item(key: &str) -> Item {
    Item {
        key: key.to_owned(),
        payload: String::new(),
    }
}

async fn store() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path(), "setup").await.unwrap().0;
    for dataset in ["a", "b"] {
        engine.create_dataset(dataset).await.unwrap();
    }
    (dir, engine)
}

async fn handle(dir: &tempfile::TempDir, label: &str) -> Engine {
    Engine::open(dir.path(), label).await.unwrap().0
}

/// A worker `w` on its own handle, once it serves.
async fn serving(dir: &tempfile::TempDir, address: SocketAddr, settings: WorkerSettings) -> Worker {
    let worker =
        Worker::start("w", handle(dir, "w").await, address, settings).expect("a valid worker name");
    until_serving(&worker, &[("a", 0)]).await;
    worker
}

/// Waits up to 5 s for `worker` to be healthy and serve `expected`.
async fn until_serving(worker: &Worker, expected: &[(&str, u64)]) {
    let expected: BTreeMap<String, u64> =
        expected.iter().map(|(d, v)| (d.to_string(), *v)).collect();
    let started = Instant::now();
    loop {
        let view = worker.view().unwrap_or_default();
        let matches = expected.iter().all(|(d, v)| view.get(d) == Some(v));
        if worker.health().healthy() && matches {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "worker never served {expected:?}: view {view:?}, health {:?}",
            worker.health()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_worker_reaches_the_other_by_notification() {
    let (dir, _setup) = store().await;
    let (address, _task) = broadcaster("127.0.0.1:0").await;
    let settings = WorkerSettings::default();
    let one = Worker::start("one", handle(&dir, "one").await, address, settings)
        .expect("a valid worker name");
    let two = Worker::start("two", handle(&dir, "two").await, address, settings)
        .expect("a valid worker name");
    until_serving(&one, &[("a", 0)]).await;
    until_serving(&two, &[("a", 0)]).await;
    assert_eq!(one.change("a", &[item("k1")]).await.unwrap().version, 1);
    assert_eq!(one.change("a", &[item("k2")]).await.unwrap().version, 2);
    until_serving(&two, &[("a", 2), ("b", 0)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_or_duplicate_notification_never_moves_a_view_back() {
    let (dir, _setup) = store().await;
    let (address, _task) = broadcaster("127.0.0.1:0").await;
    let worker = serving(&dir, address, WorkerSettings::default()).await;
    worker.change("a", &[item("k1")]).await.unwrap();
    worker.change("a", &[item("k2")]).await.unwrap();
    // A stale publish straight onto the wire, then a newer one to know it was applied after.
    let mut publisher = BufReader::new(tokio::net::TcpStream::connect(address).await.unwrap());
    let stale = "PUB heads a 1\nPUB heads b 7\n";
    publisher
        .get_mut()
        .write_all(stale.as_bytes())
        .await
        .unwrap();
    let mut acknowledged = 0;
    while acknowledged < 2 {
        let mut line = String::new();
        publisher.read_line(&mut line).await.unwrap();
        acknowledged += usize::from(line == "OK\n");
    }
    until_serving(&worker, &[("a", 2), ("b", 7)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_reconnect_resubscribe_and_resync_after_the_broadcaster_restarts() {
    let (dir, _setup) = store().await;
    let (address, task) = broadcaster("127.0.0.1:0").await;
    let mut settings = WorkerSettings::default();
    settings.silence = Duration::from_millis(200);
    let one = Worker::start("one", handle(&dir, "one").await, address, settings)
        .expect("a valid worker name");
    let two = Worker::start("two", handle(&dir, "two").await, address, settings)
        .expect("a valid worker name");
    until_serving(&two, &[("a", 0)]).await;
    until_serving(&one, &[("a", 0)]).await;

    task.abort();
    let _ = task.await;
    // Down: the change is committed, its publish fails, and nobody hears of it.
    let started = Instant::now();
    while two.health().connected {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "two never noticed the loss"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(one.change("b", &[item("down")]).await.unwrap().version, 1);
    assert!(two.view().unwrap().get("b").copied().unwrap_or(0) < 1);

    let (again, _task) = broadcaster(&address.to_string()).await;
    assert_eq!(again, address);
    until_serving(&two, &[("b", 1)]).await;
    // And the new subscription carries notifications again.
    assert_eq!(one.change("a", &[item("up")]).await.unwrap().version, 1);
    until_serving(&two, &[("a", 1), ("b", 1)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_set_to_exit_stops_serving_when_its_subscription_is_lost() {
    let (dir, _setup) = store().await;
    let (address, task) = broadcaster("127.0.0.1:0").await;
    let mut settings = WorkerSettings::default();
    settings.on_disconnect = OnDisconnect::Exit;
    let worker = serving(&dir, address, settings).await;
    task.abort();
    let why = tokio::time::timeout(Duration::from_secs(3), worker.stopped())
        .await
        .expect("the worker stops within the silence");
    assert!(!why.is_empty());
    assert_eq!(worker.view(), None, "a stopped worker serves nothing");
    assert!(!worker.health().healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_serves_nothing_and_leaves_the_broadcaster() {
    let (dir, _setup) = store().await;
    let (address, _task) = broadcaster("127.0.0.1:0").await;
    let worker = serving(&dir, address, WorkerSettings::default()).await;
    worker.stop();
    assert_eq!(worker.stopped().await, "stopped");
    assert_eq!(worker.view(), None);
    assert!(!worker.health().healthy());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_name_the_protocol_cannot_carry_is_refused() {
    let (dir, _setup) = store().await;
    let (address, _task) = broadcaster("127.0.0.1:0").await;
    for name in ["", "two words", &"x".repeat(65)] {
        let refused = Worker::start(
            name,
            handle(&dir, "w").await,
            address,
            WorkerSettings::default(),
        );
        let error = refused.err().expect("refused").to_string();
        assert!(error.contains("1 to 64 bytes without spaces"), "{error}");
    }
}
