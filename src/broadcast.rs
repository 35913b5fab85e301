//! The broadcaster: a node that relays notifications on a topic to every subscriber connected
//! at that moment, over TCP (madsim-tokio's, so real sockets outside the simulator). Like
//! Postgres LISTEN/NOTIFY or Redis pub/sub it keeps nothing: a subscriber that is not
//! connected when a notification is relayed never gets it, and a restarted broadcaster has
//! no subscribers. [`crate::workers`] is what copes with that.
//!
//! The protocol is line-based; a connection may carry several requests:
//!
//! ```text
//! client: SUB <topic> <name>\n        server: SUBSCRIBED\n, then NOTE <topic> <payload>\n
//!                                             for every later publish on <topic>
//! client: PUB <topic> <payload>\n     server: OK\n, once the note is queued to every
//!                                             subscriber of <topic>
//! server: BEAT\n every heartbeat, on every connection (a keepalive of the connection,
//!         subscribed or not: hearing beats says the link is alive, not that you subscribed)
//! ```
//!
//! Topics and names are 1 to 64 bytes without spaces; a payload is the rest of its line.
//! A subscription ends when its connection does (end of file, or a write that fails).
//! The failpoint `engine.broadcast.relay.before` comes before each relay: a delay there holds
//! a publish, a crash there kills the broadcaster with the publisher waiting for its `OK`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline_fp::fp;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How a broadcaster runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcasterSettings {
    /// Time between two beats on every connection. Default 100 ms.
    pub heartbeat: Duration,
}

impl Default for BroadcasterSettings {
    fn default() -> Self {
        BroadcasterSettings {
            heartbeat: Duration::from_millis(100),
        }
    }
}

/// Something the broadcaster did, for whoever watches it (a test, a simulation's checker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BroadcastEvent {
    /// `name` subscribed to `topic` (its `SUBSCRIBED` is queued).
    Subscribed {
        /// The subscriber's name, as it gave it.
        name: String,
        /// The topic.
        topic: String,
    },
    /// `name`'s subscription to `topic` ended with its connection.
    Unsubscribed {
        /// The subscriber's name.
        name: String,
        /// The topic.
        topic: String,
    },
    /// A publish on `topic` was queued to `subscribers` connections.
    Relayed {
        /// The topic.
        topic: String,
        /// What was published.
        payload: String,
        /// How many subscribers it was queued to.
        subscribers: usize,
    },
}

/// Called with every [`BroadcastEvent`], in order, on the broadcaster's tasks.
pub type Observer = Arc<dyn Fn(BroadcastEvent) + Send + Sync>;

struct Subscriber {
    name: String,
    topic: String,
    lines: mpsc::UnboundedSender<String>,
}

#[derive(Default)]
struct Hub {
    subscribers: Mutex<BTreeMap<u64, Subscriber>>,
    next: Mutex<u64>,
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Subscriber>> {
        self.subscribers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serves a broadcaster on `listener` until the task is dropped. Dropping it (aborting its
/// task) ends every connection with it, as a crash of the broadcaster's process would.
pub async fn serve(
    listener: TcpListener,
    settings: BroadcasterSettings,
    observer: Option<Observer>,
) {
    let hub = Arc::new(Hub::default());
    let mut connections = Connections(Vec::new());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let id = {
            let mut next = hub.next.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            *next
        };
        let (hub, observer) = (hub.clone(), observer.clone());
        connections.0.retain(|task| !task.is_finished());
        connections.0.push(tokio::spawn(async move {
            connection(stream, id, &hub, settings, observer.as_ref()).await;
            unsubscribe(&hub, id, observer.as_ref());
        }));
    }
}

/// Tasks aborted when this is dropped: the broadcaster's connections when it is, a
/// connection's request reader when the connection ends.
struct Connections(Vec<tokio::task::JoinHandle<()>>);

impl Drop for Connections {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

fn notify(observer: Option<&Observer>, event: BroadcastEvent) {
    if let Some(observer) = observer {
        observer(event);
    }
}

fn unsubscribe(hub: &Hub, id: u64, observer: Option<&Observer>) {
    let removed = hub.lock().remove(&id);
    if let Some(Subscriber { name, topic, .. }) = removed {
        notify(observer, BroadcastEvent::Unsubscribed { name, topic });
    }
}

/// One connection: a task reading its requests, this one writing its lines and beats.
async fn connection(
    stream: TcpStream,
    id: u64,
    hub: &Arc<Hub>,
    settings: BroadcasterSettings,
    observer: Option<&Observer>,
) {
    let (reader, mut writer) = tokio::io::split(stream);
    let (lines, mut queued) = mpsc::unbounded_channel::<String>();
    let _requests = {
        let (hub, observer) = (hub.clone(), observer.cloned());
        Connections(vec![tokio::spawn(async move {
            let _ = requests(reader, id, &hub, lines, observer.as_ref()).await;
        })])
    };
    let mut beat = tokio::time::Instant::now() + settings.heartbeat;
    loop {
        let line = tokio::select! {
            line = queued.recv() => match line {
                Some(line) => line,
                None => break,
            },
            _ = tokio::time::sleep_until(beat) => {
                beat += settings.heartbeat;
                "BEAT".to_owned()
            }
        };
        let written = async {
            writer.write_all(format!("{line}\n").as_bytes()).await?;
            writer.flush().await
        };
        if written.await.is_err() {
            break;
        }
    }
}

async fn requests(
    reader: tokio::io::ReadHalf<TcpStream>,
    id: u64,
    hub: &Hub,
    lines: mpsc::UnboundedSender<String>,
    observer: Option<&Observer>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(reader);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            // End of file: the subscription ends; the writer ends once `lines` is dropped.
            unsubscribe(hub, id, observer);
            return Ok(());
        }
        let line = line.trim_end_matches('\n');
        let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
        match (verb, rest.split_once(' ')) {
            ("SUB", Some((topic, name))) if word(topic) && word(name) => {
                hub.lock().insert(
                    id,
                    Subscriber {
                        name: name.to_owned(),
                        topic: topic.to_owned(),
                        lines: lines.clone(),
                    },
                );
                let _ = lines.send("SUBSCRIBED".to_owned());
                notify(
                    observer,
                    BroadcastEvent::Subscribed {
                        name: name.to_owned(),
                        topic: topic.to_owned(),
                    },
                );
            }
            ("PUB", Some((topic, payload))) if word(topic) => {
                if fp!("engine.broadcast.relay.before").await.is_err() {
                    let _ = lines.send("ERR the relay failed".to_owned());
                    continue;
                }
                let subscribers = {
                    let subscribers = hub.lock();
                    let mut sent = 0;
                    for subscriber in subscribers.values().filter(|s| s.topic == topic) {
                        sent += usize::from(
                            subscriber
                                .lines
                                .send(format!("NOTE {topic} {payload}"))
                                .is_ok(),
                        );
                    }
                    sent
                };
                notify(
                    observer,
                    BroadcastEvent::Relayed {
                        topic: topic.to_owned(),
                        payload: payload.to_owned(),
                        subscribers,
                    },
                );
                let _ = lines.send("OK".to_owned());
            }
            _ => {
                let _ = lines.send(format!("ERR unknown request {line:?}"));
            }
        }
    }
}

fn word(text: &str) -> bool {
    (1..=64).contains(&text.len()) && !text.contains([' ', '\n'])
}
