//! The inventory service: items and their stock, and the orders placed against them, in one
//! SQLite file that every process of the service opens on its own; a catalog of the stock at
//! the start in a plain file beside it.
//!
//! [`Inventory::reserve`] is a read-modify-write: it reads an item's stock, decides, and
//! writes the stock less the order's quantity, with a failpoint between the read and the
//! write. It takes SQLite's write lock (`BEGIN IMMEDIATE`) before it reads, so no other
//! process can write in between. The `planted-bug` feature reads first and takes the lock
//! only to write: two processes that read the same stock both write their own result, and
//! one order's deduction is lost.
//!
//! The service knows nothing of the simulator: it uses `tokio` (madsim's under
//! `--cfg madsim`), `faultline_fp::fp!` for its failpoint and `faultline_files` for its
//! plain file. Every connection has a zero busy timeout; a locked file is retried after an
//! async sleep ([`retry_busy`]), so that under the simulator the lock holder gets to run.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use faultline_fp::fp;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};

/// The SQLite file, in the store's directory.
pub const DATABASE: &str = "inventory.db";
/// The plain file listing each item's stock at the start, one `item count` a line.
pub const CATALOG: &str = "catalog.txt";
/// How many times a locked statement is tried before [`Error::Busy`].
pub const BUSY_ATTEMPTS: u32 = 400;

const SCHEMA: &str = "
    CREATE TABLE stock (item TEXT PRIMARY KEY, count INTEGER NOT NULL);
    CREATE TABLE orders (id TEXT PRIMARY KEY, item TEXT NOT NULL, quantity INTEGER NOT NULL);
";

/// One order: reserve `quantity` of `item`. Its id makes it idempotent: placing it again
/// (after a crash, say) finds it placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    /// Unique among all orders.
    pub id: String,
    /// The item.
    pub item: String,
    /// How many.
    pub quantity: i64,
}

/// What a reservation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reserved {
    /// The order is placed; this much is left.
    Placed {
        /// The stock after the order.
        left: i64,
    },
    /// The order had been placed before.
    AlreadyPlaced,
    /// Not enough stock; nothing was written.
    OutOfStock {
        /// The stock, less than the order's quantity.
        left: i64,
    },
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reserved::Placed { left } => write!(f, "placed, {left} left"),
            Reserved::AlreadyPlaced => f.write_str("already placed"),
            Reserved::OutOfStock { left } => write!(f, "out of stock, {left} left"),
        }
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum Error {
    /// A failpoint injected an error.
    Injected(faultline_fp::Injected),
    /// SQLite failed.
    Sql(rusqlite::Error),
    /// The file stayed locked through every attempt.
    Busy {
        /// What was being done.
        operation: &'static str,
    },
    /// The catalog could not be read or written.
    Catalog(std::io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Injected(injected) => injected.fmt(f),
            Error::Sql(error) => write!(f, "sqlite: {error}"),
            Error::Busy { operation } => {
                write!(
                    f,
                    "{operation}: still locked after {BUSY_ATTEMPTS} attempts"
                )
            }
            Error::Catalog(error) => write!(f, "catalog: {error}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        Error::Sql(error)
    }
}

impl From<faultline_fp::Injected> for Error {
    fn from(injected: faultline_fp::Injected) -> Self {
        Error::Injected(injected)
    }
}

/// One process's handle on the service's store.
pub struct Inventory {
    connection: Connection,
    busy_retries: u64,
}

impl Inventory {
    /// Creates a store in `dir`: the directory and the catalog through the file seam, the
    /// SQLite file in WAL mode with each item's stock.
    pub fn create(dir: &Path, stock: &[(String, i64)]) -> Result<(), Error> {
        faultline_files::create_dir_all(dir).map_err(Error::Catalog)?;
        let catalog: String = stock
            .iter()
            .map(|(item, count)| format!("{item} {count}\n"))
            .collect();
        faultline_files::write_synced(&dir.join(CATALOG), catalog.as_bytes())
            .map_err(Error::Catalog)?;
        let connection = open_file(&dir.join(DATABASE))?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.execute_batch(&format!("BEGIN IMMEDIATE; {SCHEMA} COMMIT;"))?;
        for (item, count) in stock {
            connection.execute("INSERT INTO stock VALUES (?1, ?2)", (item, count))?;
        }
        Ok(())
    }

    /// Opens the store in `dir` (created by [`Inventory::create`]).
    pub async fn open(dir: &Path) -> Result<Inventory, Error> {
        let mut connection = open_file(&dir.join(DATABASE))?;
        let mut retries = 0;
        retry_busy(&mut connection, &mut retries, "open", |c| {
            c.pragma_update(None, "synchronous", "FULL")
        })
        .await?;
        Ok(Inventory {
            connection,
            busy_retries: retries,
        })
    }

    /// Opens the store in `dir` read-only, without waiting for anything: for checks made
    /// once every process is done.
    pub fn inspect(dir: &Path) -> Result<Inventory, Error> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(dir.join(DATABASE), flags)?;
        Ok(Inventory {
            connection,
            busy_retries: 0,
        })
    }

    /// How many times this handle has waited for another's write lock.
    pub fn busy_retries(&self) -> u64 {
        self.busy_retries
    }

    /// Reserves `order`'s quantity of its item, once: read the stock, decide, write it back
    /// with the order, in one transaction. An error leaves nothing written.
    pub async fn reserve(&mut self, order: &Order) -> Result<Reserved, Error> {
        let reserved = self.reserve_or_leave_open(order).await;
        if !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
        reserved
    }

    async fn reserve_or_leave_open(&mut self, order: &Order) -> Result<Reserved, Error> {
        #[cfg(not(feature = "planted-bug"))]
        self.begin_write().await?;
        let placed = self.query("reserve.find", |c| placed(c, &order.id)).await?;
        if placed {
            return Ok(Reserved::AlreadyPlaced);
        }
        let left = self
            .query("reserve.read", |c| stock(c, &order.item))
            .await?;
        fp!("inventory.reserve.between_read_and_write").await?;
        if left < order.quantity {
            return Ok(Reserved::OutOfStock { left });
        }
        #[cfg(feature = "planted-bug")]
        self.begin_write().await?;
        let left = left - order.quantity;
        self.query("reserve.write", |c| write(c, order, left))
            .await?;
        self.query("reserve.commit", |c| c.execute_batch("COMMIT"))
            .await?;
        Ok(Reserved::Placed { left })
    }

    async fn begin_write(&mut self) -> Result<(), Error> {
        self.query("reserve.begin", |c| c.execute_batch("BEGIN IMMEDIATE"))
            .await
    }

    async fn query<T>(
        &mut self,
        operation: &'static str,
        statement: impl FnMut(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, Error> {
        let retries = &mut self.busy_retries;
        retry_busy(&mut self.connection, retries, operation, statement).await
    }

    /// Every item's stock now, by item.
    pub fn stock(&self) -> Result<Vec<(String, i64)>, Error> {
        rows(
            &self.connection,
            "SELECT item, count FROM stock ORDER BY item",
        )
    }

    /// Every placed order's item and quantity, by order id.
    pub fn orders(&self) -> Result<Vec<(String, i64)>, Error> {
        rows(
            &self.connection,
            "SELECT item, quantity FROM orders ORDER BY id",
        )
    }
}

/// Each item's stock at the start, from the catalog in `dir` (read through the file seam).
pub fn catalog(dir: &Path) -> Result<Vec<(String, i64)>, Error> {
    let bytes = faultline_files::read(&dir.join(CATALOG)).map_err(Error::Catalog)?;
    let text = String::from_utf8_lossy(&bytes);
    let bad = |line: &str| {
        let message = format!("bad catalog line {line:?}");
        Error::Catalog(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            message,
        ))
    };
    text.lines()
        .map(|line| {
            let (item, count) = line.split_once(' ').ok_or_else(|| bad(line))?;
            let count = count.parse().map_err(|_| bad(line))?;
            Ok((item.to_owned(), count))
        })
        .collect()
}

/// Opens (creating if needed) a SQLite file with a zero busy timeout: a locked file returns
/// `SQLITE_BUSY` at once and [`retry_busy`] sleeps before the next attempt.
fn open_file(path: &Path) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags)?;
    connection.busy_timeout(Duration::ZERO)?;
    Ok(connection)
}

/// Runs `statement` until it is not refused for a lock, sleeping 1, 2, 4, then 8 ms of
/// (simulated) time between attempts and counting them in `retries`. After each attempt
/// `faultline_fp::settle` pays the simulated time the statement's I/O cost and lets the
/// simulator schedule another node there; each retry is noted in the run's trace.
pub async fn retry_busy<T>(
    connection: &mut Connection,
    retries: &mut u64,
    operation: &'static str,
    mut statement: impl FnMut(&Connection) -> rusqlite::Result<T>,
) -> Result<T, Error> {
    for attempt in 0..BUSY_ATTEMPTS {
        let outcome = statement(connection);
        faultline_fp::settle().await;
        match outcome {
            Err(error) if is_busy(&error) => {
                *retries += 1;
                faultline_fp::note("sqlite.busy", &operation);
                tokio::time::sleep(Duration::from_millis(1 << attempt.min(3))).await;
            }
            other => return other.map_err(Error::Sql),
        }
    }
    Err(Error::Busy { operation })
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn placed(connection: &Connection, id: &str) -> rusqlite::Result<bool> {
    let sql = "SELECT 1 FROM orders WHERE id = ?1";
    let found: Option<i64> = connection.query_row(sql, [id], |r| r.get(0)).optional()?;
    Ok(found.is_some())
}

fn stock(connection: &Connection, item: &str) -> rusqlite::Result<i64> {
    let sql = "SELECT count FROM stock WHERE item = ?1";
    connection.query_row(sql, [item], |r| r.get(0))
}

fn write(connection: &Connection, order: &Order, left: i64) -> rusqlite::Result<()> {
    let update = "UPDATE stock SET count = ?1 WHERE item = ?2";
    connection.execute(update, (left, &order.item))?;
    let insert = "INSERT INTO orders VALUES (?1, ?2, ?3)";
    connection.execute(insert, (&order.id, &order.item, order.quantity))?;
    Ok(())
}

fn rows(connection: &Connection, sql: &str) -> Result<Vec<(String, i64)>, Error> {
    let mut statement = connection.prepare(sql)?;
    let rows = statement.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
