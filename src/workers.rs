//! Workers: engine handles that serve reads from an in-memory view of every dataset's head
//! version, kept in step with the store by notifications relayed through a
//! [`crate::broadcast`] broadcaster.
//!
//! A worker that changes the store ([`Worker::change`]) appends through its engine handle,
//! then publishes `<dataset> <version>` on the topic `heads`. A worker applies a
//! notification only if it is newer than what its view holds, so a duplicate or a late
//! notification never moves the view backwards; a resync merges the store's heads the same
//! way.
//!
//! The broadcaster keeps nothing for a subscriber that is away, so every subscription
//! starts the same way, and this order is what loses nothing:
//! 1. connect and send `SUB`, then wait for `SUBSCRIBED`: from then on every publish reaches
//!    this connection;
//! 2. only then resync: read every head from the store (one snapshot) and merge it. A change
//!    committed before step 1 completed is in that snapshot; one committed after it is
//!    relayed to this connection (or is in the snapshot as well, and the duplicate is
//!    ignored). Resyncing first, then subscribing, would lose whatever was committed and
//!    published in between;
//! 3. report healthy, then announce every head just read (a change whose publisher crashed
//!    between its commit and its publish is thereby published by the next worker to
//!    resync), and any of its own publishes that had failed.
//!
//! A lost subscription is detected by an error or end of file on the connection, or by a
//! silence: no line (the broadcaster beats every 100 ms by default) for
//! [`WorkerSettings::silence`]. What follows is [`OnDisconnect`]: reconnect with backoff
//! and start again at step 1, or stop serving and end ([`Worker::stopped`]), for a
//! supervisor to start a fresh worker, which resyncs before it serves.
//!
//! Failpoints: `engine.workers.publish.before` (between a change's commit and its publish;
//! an injected error is a publish that failed), `engine.workers.subscribed.before_resync`,
//! `engine.workers.resync.before_serve` and `engine.workers.apply.before` (an injected error
//! there breaks the subscription, which is then started again).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use faultline_fp::fp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::append::Receipt;
use crate::error::Result;
use crate::table::Item;
use crate::Engine;

/// The topic workers publish heads on.
pub const TOPIC: &str = "heads";

/// What a worker does when its subscription is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDisconnect {
    /// Reconnect with backoff, resubscribe and resync, serving the view meanwhile (reported
    /// not connected).
    Reconnect,
    /// Stop serving and end: [`Worker::stopped`] returns, and a supervisor starts a fresh
    /// worker.
    Exit,
}

/// How a worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerSettings {
    /// A subscription with no line for this long is lost. Default 300 ms (three beats).
    pub silence: Duration,
    /// The bound on connecting, on the answer to `SUB` and on each publish. Default 300 ms.
    pub call_timeout: Duration,
    /// First pause before reconnecting; it doubles up to `backoff_most`. Default 20 ms.
    pub backoff_first: Duration,
    /// Longest pause before reconnecting. Default 320 ms.
    pub backoff_most: Duration,
    /// What a lost subscription leads to. Default [`OnDisconnect::Reconnect`].
    pub on_disconnect: OnDisconnect,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            silence: Duration::from_millis(300),
            call_timeout: Duration::from_millis(300),
            backoff_first: Duration::from_millis(20),
            backoff_most: Duration::from_millis(320),
            on_disconnect: OnDisconnect::Reconnect,
        }
    }
}

/// What a worker says of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    /// It serves reads (after its first resync, until it stops).
    pub serving: bool,
    /// Its subscription is established (as far as it knows).
    pub connected: bool,
    /// Time since it last heard from the broadcaster, if it ever did.
    pub since_heard: Option<Duration>,
}

impl Health {
    /// Serving and connected.
    pub fn healthy(&self) -> bool {
        self.serving && self.connected
    }
}

/// A worker: its view, its subscription task, its publishes. Cloning shares it.
#[derive(Clone)]
pub struct Worker {
    shared: Arc<Shared>,
}

struct Shared {
    name: String,
    engine: Engine,
    broadcaster: SocketAddr,
    settings: WorkerSettings,
    state: Mutex<State>,
    stopped: tokio::sync::Notify,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    view: BTreeMap<String, u64>,
    serving: bool,
    connected: bool,
    heard: Option<Instant>,
    /// Heads whose publish failed (its own changes, or an announce), to publish again.
    unpublished: BTreeMap<String, u64>,
    stop: Option<String>,
}

impl Worker {
    /// Starts a worker named `name` (1 to 64 bytes without spaces or newlines: its name at
    /// the broadcaster) on `engine`, subscribing through the broadcaster at `broadcaster`.
    /// It serves nothing until its first resync. Another name is
    /// [`EngineError::InvalidSetting`](crate::EngineError::InvalidSetting).
    pub fn start(
        name: &str,
        engine: Engine,
        broadcaster: SocketAddr,
        settings: WorkerSettings,
    ) -> Result<Worker> {
        if !(1..=64).contains(&name.len()) || name.contains([' ', '\n']) {
            return Err(crate::EngineError::InvalidSetting(format!(
                "worker name {name:?}: names are 1 to 64 bytes without spaces or newlines"
            )));
        }
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            engine,
            broadcaster,
            settings,
            state: Mutex::new(State::default()),
            stopped: tokio::sync::Notify::new(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(subscription(shared.clone()));
        *shared.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        Ok(Worker { shared })
    }

    /// The view (dataset -> head version), or `None` while not serving.
    pub fn view(&self) -> Option<BTreeMap<String, u64>> {
        let state = self.shared.lock();
        state.serving.then(|| state.view.clone())
    }

    /// What the worker says of itself.
    pub fn health(&self) -> Health {
        let state = self.shared.lock();
        Health {
            serving: state.serving,
            connected: state.connected,
            since_heard: state.heard.map(|at| at.elapsed()),
        }
    }

    /// Appends `items` to `dataset` (one attempt: a conflict is returned) and publishes the
    /// new head. A publish that fails is kept and published again after the next beat or
    /// resync; it never fails the change, which is committed.
    pub async fn change(&self, dataset: &str, items: &[Item]) -> Result<Receipt> {
        let receipt = self.shared.engine.append(dataset, items).await?;
        self.shared.apply(dataset, receipt.version);
        let heads = [(dataset.to_owned(), receipt.version)];
        let published = match fp!("engine.workers.publish.before").await {
            Ok(()) => publish(&self.shared, &heads).await,
            Err(injected) => Err(injected.to_string()),
        };
        if published.is_err() {
            self.shared.keep_unpublished(&heads);
        }
        Ok(receipt)
    }

    /// Stops the worker: its subscription ends, it serves nothing, [`Worker::stopped`]
    /// returns. A change in progress on another task still completes.
    pub fn stop(&self) {
        if let Some(task) = self
            .shared
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            task.abort();
        }
        {
            let mut state = self.shared.lock();
            state.serving = false;
            state.connected = false;
            state.stop.get_or_insert_with(|| "stopped".to_owned());
        }
        self.shared.stopped.notify_waiters();
    }

    /// Waits until the worker has stopped ([`OnDisconnect::Exit`], or [`Worker::stop`]);
    /// returns why.
    pub async fn stopped(&self) -> String {
        loop {
            let notified = self.shared.stopped.notified();
            if let Some(why) = self.shared.lock().stop.clone() {
                return why;
            }
            notified.await;
        }
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the view of `dataset` to `version` if that is newer.
    fn apply(&self, dataset: &str, version: u64) {
        let mut state = self.lock();
        let held = state.view.entry(dataset.to_owned()).or_insert(0);
        if version > *held {
            *held = version;
        }
    }

    fn keep_unpublished(&self, heads: &[(String, u64)]) {
        let mut state = self.lock();
        for (dataset, version) in heads {
            let kept = state.unpublished.entry(dataset.clone()).or_insert(0);
            *kept = (*kept).max(*version);
        }
    }

    fn heard(&self) {
        self.lock().heard = Some(Instant::now());
    }
}

/// The subscription task: sessions until the worker stops.
async fn subscription(shared: Arc<Shared>) {
    let settings = shared.settings;
    let mut backoff = settings.backoff_first;
    loop {
        let (subscribed, why) = session(&shared).await;
        faultline_fp::note("engine.workers.lost", &why);
        {
            let mut state = shared.lock();
            state.connected = false;
            if settings.on_disconnect == OnDisconnect::Exit {
                state.serving = false;
                state.stop = Some(why);
            }
        }
        if settings.on_disconnect == OnDisconnect::Exit {
            shared.stopped.notify_waiters();
            return;
        }
        if subscribed {
            backoff = settings.backoff_first;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(settings.backoff_most);
    }
}

/// One subscription, until it is lost: whether it got as far as `SUBSCRIBED`, and why it
/// ended.
async fn session(shared: &Shared) -> (bool, String) {
    let settings = shared.settings;
    let connected = tokio::time::timeout(settings.call_timeout, async {
        let stream = TcpStream::connect(shared.broadcaster).await?;
        let mut stream = BufReader::new(stream);
        let request = format!("SUB {TOPIC} {}\n", shared.name);
        stream.get_mut().write_all(request.as_bytes()).await?;
        stream.get_mut().flush().await?;
        loop {
            match read_line(&mut stream).await?.as_str() {
                "SUBSCRIBED" => return Ok(stream),
                "BEAT" => {}
                other => return Err(protocol(other)),
            }
        }
    })
    .await;
    let mut stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return (false, format!("subscribing: {error}")),
        Err(_) => return (false, "subscribing: no answer in time".to_owned()),
    };
    shared.heard();
    if let Err(why) = resync(shared).await {
        return (true, why);
    }
    loop {
        let line = match tokio::time::timeout(settings.silence, read_line(&mut stream)).await {
            Ok(Ok(line)) => line,
            Ok(Err(error)) => return (true, format!("the subscription broke: {error}")),
            Err(_) => {
                return (
                    true,
                    format!(
                        "no word from the broadcaster for {}ms",
                        settings.silence.as_millis()
                    ),
                )
            }
        };
        shared.heard();
        match line.split_once(' ') {
            None if line == "BEAT" => {
                let unpublished: Vec<(String, u64)> = {
                    let state = shared.lock();
                    state
                        .unpublished
                        .iter()
                        .map(|(d, v)| (d.clone(), *v))
                        .collect()
                };
                if !unpublished.is_empty() && publish(shared, &unpublished).await.is_ok() {
                    forget_published(shared, &unpublished);
                }
            }
            Some(("NOTE", note)) => {
                let Some((dataset, version)) = parse_note(note) else {
                    return (true, protocol(&line).to_string());
                };
                if let Err(injected) = fp!("engine.workers.apply.before").await {
                    return (true, injected.to_string());
                }
                shared.apply(dataset, version);
            }
            _ => return (true, protocol(&line).to_string()),
        }
    }
}

/// Steps 2 and 3 of a subscription: merge the store's heads, serve, announce.
async fn resync(shared: &Shared) -> std::result::Result<(), String> {
    fp!("engine.workers.subscribed.before_resync")
        .await
        .map_err(|e| e.to_string())?;
    let heads = shared
        .engine
        .heads()
        .await
        .map_err(|e| format!("resync: {e}"))?;
    for (dataset, version) in &heads {
        shared.apply(dataset, *version);
    }
    fp!("engine.workers.resync.before_serve")
        .await
        .map_err(|e| e.to_string())?;
    let announced: Vec<(String, u64)> = {
        let mut state = shared.lock();
        state.serving = true;
        state.connected = true;
        let mut announced = heads.clone();
        for (dataset, version) in &state.unpublished {
            let head = announced.entry(dataset.clone()).or_insert(0);
            *head = (*head).max(*version);
        }
        announced.into_iter().filter(|(_, v)| *v > 0).collect()
    };
    match publish(shared, &announced).await {
        Ok(()) => forget_published(shared, &announced),
        // Kept like a failed publish of its own: the head may be a change whose publisher
        // crashed before publishing it, and nobody else will announce it.
        Err(_) => shared.keep_unpublished(&announced),
    }
    Ok(())
}

fn forget_published(shared: &Shared, published: &[(String, u64)]) {
    let mut state = shared.lock();
    for (dataset, version) in published {
        if state
            .unpublished
            .get(dataset)
            .is_some_and(|kept| kept <= version)
        {
            state.unpublished.remove(dataset);
        }
    }
}

/// Publishes `heads` on one connection, each acknowledged, within the call timeout.
async fn publish(shared: &Shared, heads: &[(String, u64)]) -> std::result::Result<(), String> {
    if heads.is_empty() {
        return Ok(());
    }
    let call = async {
        let stream = TcpStream::connect(shared.broadcaster).await?;
        let mut stream = BufReader::new(stream);
        for (dataset, version) in heads {
            let line = format!("PUB {TOPIC} {dataset} {version}\n");
            stream.get_mut().write_all(line.as_bytes()).await?;
        }
        stream.get_mut().flush().await?;
        let mut acknowledged = 0;
        while acknowledged < heads.len() {
            match read_line(&mut stream).await?.as_str() {
                "OK" => acknowledged += 1,
                "BEAT" => {}
                other => return Err(protocol(other)),
            }
        }
        Ok(())
    };
    match tokio::time::timeout(shared.settings.call_timeout, call).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(format!("publishing: {error}")),
        Err(_) => Err("publishing: no answer in time".to_owned()),
    }
}

fn parse_note(note: &str) -> Option<(&str, u64)> {
    let (topic, payload) = note.split_once(' ')?;
    let (dataset, version) = payload.split_once(' ')?;
    (topic == TOPIC).then_some(())?;
    Some((dataset, version.parse().ok()?))
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> std::io::Result<String> {
    let mut line = String::new();
    match stream.read_line(&mut line).await? {
        0 => Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the broadcaster closed the connection",
        )),
        _ => Ok(line.trim_end_matches('\n').to_owned()),
    }
}

fn protocol(line: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("unexpected line {line:?} from the broadcaster"),
    )
}
