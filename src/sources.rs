//! Sources: remote repositories the store mirrors, served over TCP (tokio's networking
//! through madsim-tokio: real sockets outside the simulator, madsim's network inside it).
//!
//! The protocol is line-based, one request per connection:
//!
//! ```text
//! client: LATEST\n                  server: REV <n>\n            (0: no revision yet)
//! client: FETCH <n>\n               server: ENTRY <name> <len>\n<len bytes>  (per entry)
//!                                           END\n
//!                                   or:     ERR <message>\n
//! ```
//!
//! Each entry is written (and flushed) on its own, so a connection that breaks mid-reply
//! leaves the reader a truncated reply, never a short one that looks whole: the reader
//! accepts a revision only after `END`. The failpoint `engine.sources.answer.entry`, before
//! each entry, is where the simulator resets a connection mid-transfer (an injected error
//! there drops the connection), delays a transfer or crashes the source.
//!
//! Entry names are 1 to 128 bytes without spaces or newlines. Every client call has a
//! timeout: a source that accepts and never answers gives [`FetchError::Timeout`], one that
//! cannot be reached [`FetchError::Unreachable`]; neither hangs.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use faultline_fp::fp;

/// One revision of a source: named entries and their bytes.
pub type Revision = BTreeMap<String, Vec<u8>>;

/// Why a fetch from a source failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The source could not be connected to or the connection broke.
    Unreachable(String),
    /// The source did not answer within the timeout.
    Timeout(Duration),
    /// The source answered something this protocol does not allow.
    Protocol(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Unreachable(why) => write!(f, "source unreachable: {why}"),
            FetchError::Timeout(after) => {
                write!(f, "source did not answer within {}ms", after.as_millis())
            }
            FetchError::Protocol(why) => write!(f, "source broke the protocol: {why}"),
        }
    }
}

impl std::error::Error for FetchError {}

/// A source's revisions, shared between its server and whoever adds revisions to it.
#[derive(Debug, Clone, Default)]
pub struct Repository {
    revisions: Arc<Mutex<Vec<Revision>>>,
}

impl Repository {
    /// Adds a revision; returns its number (from 1).
    pub fn commit(&self, revision: Revision) -> u64 {
        let mut revisions = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        revisions.push(revision);
        revisions.len() as u64
    }

    /// The latest revision's number (0: none).
    pub fn latest(&self) -> u64 {
        self.revisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len() as u64
    }

    /// Revision `number`, if it exists.
    pub fn revision(&self, number: u64) -> Option<Revision> {
        let revisions = self.revisions.lock().unwrap_or_else(|p| p.into_inner());
        let index = usize::try_from(number.checked_sub(1)?).ok()?;
        revisions.get(index).cloned()
    }
}

/// Serves `repository` on `listener` until the task is dropped; each connection is one
/// request, answered on a task of its own.
pub async fn serve(listener: TcpListener, repository: Repository) {
    serve_slowly(listener, repository, Duration::ZERO).await;
}

/// [`serve`], taking `transfer` longer to answer each fetch (a large repository).
pub async fn serve_slowly(listener: TcpListener, repository: Repository, transfer: Duration) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let repository = repository.clone();
        tokio::spawn(async move {
            let _ = answer(stream, &repository, transfer).await;
        });
    }
}

async fn answer(
    stream: TcpStream,
    repository: &Repository,
    transfer: Duration,
) -> std::io::Result<()> {
    let mut stream = BufReader::new(stream);
    let mut request = String::new();
    stream.read_line(&mut request).await?;
    let stream = stream.get_mut();
    match request
        .trim()
        .split_once(' ')
        .unwrap_or((request.trim(), ""))
    {
        ("LATEST", _) => send(stream, format!("REV {}\n", repository.latest()).as_bytes()).await,
        ("FETCH", number) => match number.parse().ok().and_then(|n| repository.revision(n)) {
            Some(revision) => {
                if !transfer.is_zero() {
                    tokio::time::sleep(transfer).await;
                }
                for (name, bytes) in revision {
                    // An injected error here drops the connection after part of the reply:
                    // the reader sees a reset in the middle of the transfer.
                    if let Err(injected) = fp!("engine.sources.answer.entry").await {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::ConnectionReset,
                            injected,
                        ));
                    }
                    let mut entry = format!("ENTRY {name} {}\n", bytes.len()).into_bytes();
                    entry.extend(bytes);
                    send(stream, &entry).await?;
                }
                send(stream, b"END\n").await
            }
            None => send(stream, format!("ERR no revision {number:?}\n").as_bytes()).await,
        },
        (other, _) => {
            send(
                stream,
                format!("ERR unknown request {other:?}\n").as_bytes(),
            )
            .await
        }
    }
}

async fn send(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// The latest revision number of the source at `address`.
pub async fn latest(address: SocketAddr, timeout: Duration) -> Result<u64, FetchError> {
    within(timeout, async {
        let mut stream = request(address, "LATEST").await?;
        let line = read_line(&mut stream).await?;
        line.strip_prefix("REV ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| protocol(&line))
    })
    .await
}

/// Revision `number` of the source at `address`.
pub async fn fetch(
    address: SocketAddr,
    number: u64,
    timeout: Duration,
) -> Result<Revision, FetchError> {
    within(timeout, async {
        let mut stream = request(address, &format!("FETCH {number}")).await?;
        let mut revision = Revision::new();
        loop {
            let line = read_line(&mut stream).await?;
            if line == "END" {
                return Ok(revision);
            }
            let entry = line.strip_prefix("ENTRY ").and_then(|e| e.split_once(' '));
            let (name, length) = entry.ok_or_else(|| protocol(&line))?;
            let length: usize = length.parse().map_err(|_| protocol(&line))?;
            let mut bytes = vec![0; length];
            stream.read_exact(&mut bytes).await.map_err(broken)?;
            revision.insert(name.to_owned(), bytes);
        }
    })
    .await
}

async fn within<T>(
    timeout: Duration,
    call: impl std::future::Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(FetchError::Timeout(timeout)))
}

async fn request(address: SocketAddr, line: &str) -> Result<BufReader<TcpStream>, FetchError> {
    let mut stream = TcpStream::connect(address).await.map_err(broken)?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .map_err(broken)?;
    stream.flush().await.map_err(broken)?;
    Ok(BufReader::new(stream))
}

async fn read_line(stream: &mut BufReader<TcpStream>) -> Result<String, FetchError> {
    let mut line = String::new();
    match stream.read_line(&mut line).await.map_err(broken)? {
        0 => Err(FetchError::Unreachable(
            "the connection closed early".to_owned(),
        )),
        _ => Ok(line.trim_end_matches('\n').to_owned()),
    }
}

fn broken(error: std::io::Error) -> FetchError {
    FetchError::Unreachable(error.to_string())
}

fn protocol(line: &str) -> FetchError {
    FetchError::Protocol(match line.strip_prefix("ERR ") {
        Some(message) => message.to_owned(),
        None => format!("unexpected line {line:?}"),
    })
}
