//! Simulated I/O time: the simulated time a statement's work costs.
//!
//! Under the simulator SQL takes no time by itself: a statement runs between two awaits, so
//! the clock does not move while it runs. This module charges for the work instead, and the
//! engine pays for it at its next await point that settles (after every statement it runs
//! through `sql::retry_busy`, and at every failpoint):
//!
//! | what | charged | default |
//! |---|---|---|
//! | a page read from a file of the simulated disk | `read` per 4 KiB read | 20 us |
//! | a page written to one (the WAL, a database, a sidecar) | `write` per 4 KiB written | 40 us |
//! | a sync (`xSync`, a plain file's synced write) | `sync` each | 1 ms |
//! | SQLite's own work (VM instructions, through a progress handler every 1,000) | `steps` per 1,000 | 10 us |
//!
//! `FAULTLINE_IO_COST` changes it (`read=20us,write=40us,sync=1ms,steps=10us`, any subset,
//! units `ns`, `us`, `ms`, `s`; or `off`); a tape records the model it ran under and a
//! replay uses the tape's.
//!
//! How the debt is paid: the charges of one thread accumulate here and [`settle`] hands
//! them all to the payer. The engine sleeps that long where it settles (madsim sleeps at
//! least 1 ms, so a debt under 1 ms moves the whole simulation's clock instead: a brief stall
//! of everything, never a rounding error carried to someone else), still holding what it held:
//! its connection's async mutex, and inside a transaction SQLite's write lock. So a
//! statement that does much work holds its connection (and its transaction's lock) for a
//! simulated time proportional to the work, and every task waiting on them waits as long.
//!
//! What it does not model: work done in one autocommit statement is paid after SQLite has
//! released that statement's locks (another handle may take the lock meanwhile, though this
//! handle's connection stays held); SQLite's page cache hides repeated reads of a page from
//! the disk, as it would for real; nothing runs in parallel with a statement on the same
//! node except other nodes' tasks, since one node's tasks share one simulated CPU only at
//! their awaits. The real-files disk (`FAULTLINE_DISK=files`) charges only SQLite's steps.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

use libsqlite3_sys as ffi;

/// The cost model: what each kind of work costs in simulated time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoCost {
    /// Per 4 KiB read from a file.
    pub read: Duration,
    /// Per 4 KiB written to a file.
    pub write: Duration,
    /// Per sync.
    pub sync: Duration,
    /// Per 1,000 SQLite VM instructions.
    pub steps: Duration,
}

/// How many VM instructions one progress-handler call stands for.
pub const STEP_UNIT: i32 = 1000;
const PAGE: u64 = 4096;

impl Default for IoCost {
    fn default() -> Self {
        IoCost {
            read: Duration::from_micros(20),
            write: Duration::from_micros(40),
            sync: Duration::from_millis(1),
            steps: Duration::from_micros(10),
        }
    }
}

impl IoCost {
    /// Nothing costs anything (the behaviour before simulated I/O time).
    pub const OFF: IoCost = IoCost {
        read: Duration::ZERO,
        write: Duration::ZERO,
        sync: Duration::ZERO,
        steps: Duration::ZERO,
    };

    /// Parses `off`, or `key=duration` pairs separated by commas (keys `read`, `write`,
    /// `sync`, `steps`; units `ns`, `us`, `ms`, `s`); keys left out keep their default.
    pub fn parse(text: &str) -> Result<IoCost, String> {
        let text = text.trim();
        if text == "off" {
            return Ok(IoCost::OFF);
        }
        let mut cost = IoCost::default();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("{part:?} is not key=duration (keys read, write, sync, steps)")
            })?;
            let duration = parse_duration(value.trim()).ok_or_else(|| {
                format!(
                    "{value:?} is not a duration: a whole number with a unit ns, us, ms or s, at most 10s"
                )
            })?;
            match key.trim() {
                "read" => cost.read = duration,
                "write" => cost.write = duration,
                "sync" => cost.sync = duration,
                "steps" => cost.steps = duration,
                other => {
                    return Err(format!(
                        "unknown cost {other:?}: the costs are read, write, sync and steps"
                    ))
                }
            }
        }
        Ok(cost)
    }
}

fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let number: u64 = text[..split].parse().ok()?;
    let nanos = match &text[split..] {
        "ns" => number,
        "us" => number.checked_mul(1_000)?,
        "ms" => number.checked_mul(1_000_000)?,
        "s" => number.checked_mul(1_000_000_000)?,
        _ => return None,
    };
    (nanos <= 10_000_000_000).then(|| Duration::from_nanos(nanos))
}

fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    match nanos {
        0 => "0ns".to_owned(),
        n if n % 1_000_000_000 == 0 => format!("{}s", n / 1_000_000_000),
        n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        n if n % 1_000 == 0 => format!("{}us", n / 1_000),
        n => format!("{n}ns"),
    }
}

impl fmt::Display for IoCost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == IoCost::OFF {
            return write!(f, "off");
        }
        write!(
            f,
            "read={},write={},sync={},steps={}",
            format_duration(self.read),
            format_duration(self.write),
            format_duration(self.sync),
            format_duration(self.steps)
        )
    }
}

struct Ledger {
    cost: IoCost,
    /// Charged and not yet paid, in nanoseconds.
    debt: u64,
    /// Charged in all, in nanoseconds.
    total: u64,
}

thread_local! {
    static LEDGER: RefCell<Option<Ledger>> = const { RefCell::new(None) };
}

/// The cost model of this thread's run, if one is active.
pub fn current() -> Option<IoCost> {
    LEDGER.with(|ledger| ledger.borrow().as_ref().map(|l| l.cost))
}

/// Charges this thread's run under `cost` until the guard drops.
#[cfg_attr(not(madsim), allow(dead_code))] // used by the runner and the world
pub(crate) fn activate(cost: IoCost) -> Active {
    LEDGER.with(|ledger| {
        *ledger.borrow_mut() = Some(Ledger {
            cost,
            debt: 0,
            total: 0,
        })
    });
    Active(())
}

/// Ends the charging when dropped.
#[cfg_attr(not(madsim), allow(dead_code))] // used by the runner and the world
pub(crate) struct Active(());

impl Drop for Active {
    fn drop(&mut self) {
        LEDGER.with(|ledger| ledger.borrow_mut().take());
    }
}

fn charge(price: impl FnOnce(&IoCost) -> u64) {
    LEDGER.with(|ledger| {
        if let Some(ledger) = ledger.borrow_mut().as_mut() {
            let nanos = price(&ledger.cost);
            ledger.debt = ledger.debt.saturating_add(nanos);
            ledger.total = ledger.total.saturating_add(nanos);
        }
    });
}

fn per_page(unit: Duration, bytes: usize) -> u64 {
    (unit.as_nanos() as u64).saturating_mul(bytes as u64) / PAGE
}

/// Charges a read of `bytes`.
pub(crate) fn read(bytes: usize) {
    charge(|cost| per_page(cost.read, bytes));
}

/// Charges a write of `bytes`.
pub(crate) fn write(bytes: usize) {
    charge(|cost| per_page(cost.write, bytes));
}

/// Charges one sync.
pub(crate) fn sync() {
    charge(|cost| cost.sync.as_nanos() as u64);
}

/// Runs `work` without charging for it: for a harness's own reads of the store, which must
/// not cost the engine simulated time.
pub fn uncharged<T>(work: impl FnOnce() -> T) -> T {
    let before = LEDGER.with(|ledger| ledger.borrow().as_ref().map(|l| (l.debt, l.total)));
    let result = work();
    if let Some((debt, total)) = before {
        LEDGER.with(|ledger| {
            if let Some(ledger) = ledger.borrow_mut().as_mut() {
                (ledger.debt, ledger.total) = (debt, total);
            }
        });
    }
    result
}

/// This thread's whole debt, taken off it.
#[cfg_attr(not(madsim), allow(dead_code))] // used by the runner and the world
pub(crate) fn settle() -> Duration {
    LEDGER.with(|ledger| {
        let mut ledger = ledger.borrow_mut();
        let Some(ledger) = ledger.as_mut() else {
            return Duration::ZERO;
        };
        Duration::from_nanos(std::mem::take(&mut ledger.debt))
    })
}

/// Installs the step charge on every SQLite connection this process opens from now on (an
/// auto-extension that sets a progress handler). Charges only on a thread whose run is
/// active. Call once per process.
#[cfg_attr(not(madsim), allow(dead_code))] // used by the runner and the world
pub(crate) fn install_step_charge() {
    unsafe extern "C" fn on_progress(_: *mut std::ffi::c_void) -> std::ffi::c_int {
        charge(|cost| cost.steps.as_nanos() as u64);
        0
    }
    unsafe extern "C" fn on_open(
        db: *mut ffi::sqlite3,
        _: *mut *mut std::ffi::c_char,
        _: *const ffi::sqlite3_api_routines,
    ) -> std::ffi::c_int {
        // SAFETY: `db` is the connection being opened; the handler lives for the process.
        unsafe {
            ffi::sqlite3_progress_handler(db, STEP_UNIT, Some(on_progress), std::ptr::null_mut())
        };
        ffi::SQLITE_OK
    }
    // SAFETY: registering a function with the signature SQLite calls auto-extensions with.
    unsafe {
        ffi::sqlite3_auto_extension(Some(on_open));
    }
}

impl serde::Serialize for IoCost {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_string())
    }
}

impl<'de> serde::Deserialize<'de> for IoCost {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        IoCost::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_model_prints_and_parses_back() {
        let text = IoCost::default().to_string();
        assert_eq!(text, "read=20us,write=40us,sync=1ms,steps=10us");
        assert_eq!(IoCost::parse(&text), Ok(IoCost::default()));
        assert_eq!(IoCost::parse("off"), Ok(IoCost::OFF));
        assert_eq!(IoCost::OFF.to_string(), "off");
    }

    #[test]
    fn a_partial_model_keeps_the_other_defaults() {
        let cost = IoCost::parse("sync=5ms, steps=0ns").unwrap();
        assert_eq!(cost.sync, Duration::from_millis(5));
        assert_eq!(cost.steps, Duration::ZERO);
        assert_eq!(cost.read, IoCost::default().read);
    }

    #[test]
    fn bad_models_are_refused_naming_what_is_accepted() {
        let unknown = IoCost::parse("fsync=1ms").unwrap_err();
        assert!(unknown.contains("read, write, sync and steps"), "{unknown}");
        let unitless = IoCost::parse("sync=5").unwrap_err();
        assert!(unitless.contains("ns, us, ms or s"), "{unitless}");
        assert!(IoCost::parse("sync=11s").is_err());
        assert!(IoCost::parse("sync").is_err());
    }

    #[test]
    fn settle_hands_out_the_whole_debt_once() {
        let active = activate(IoCost::default());
        sync();
        write(4096 * 30);
        assert_eq!(settle(), Duration::from_micros(2200));
        assert_eq!(settle(), Duration::ZERO);
        read(2048);
        uncharged(sync);
        assert_eq!(settle(), Duration::from_micros(10));
        drop(active);
        sync();
        assert_eq!(settle(), Duration::ZERO);
    }
}
