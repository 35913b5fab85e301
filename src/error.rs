//! The engine's error type: every failure a caller can see, typed.

use std::fmt;

use faultline_fp::Injected;

/// Everything an engine call can fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The publish lost a race: the table moved past the pinned base. Retry on a fresh base.
    Conflict {
        /// The table (dataset) that moved.
        table: String,
        /// The version the caller's write was based on.
        expected: u64,
        /// The version found at publish time.
        current: u64,
    },
    /// The table is being migrated; writes to it are refused until the migration ends.
    Migrating {
        /// The table.
        table: String,
        /// The migration holding it.
        migration: String,
    },
    /// The catalog changed between preparing a load and publishing it. Retry.
    SchemaChanged {
        /// The catalog version the load was prepared for.
        expected: u64,
        /// The catalog version at publish time.
        current: u64,
    },
    /// A schema change that cannot be applied as asked.
    InvalidSchema(String),
    /// A legacy record that cannot be decoded, under the fail-the-migration policy.
    BadRecord {
        /// The record's key.
        key: String,
        /// Why it cannot be decoded.
        reason: String,
    },
    /// The named dataset does not exist.
    UnknownDataset(String),
    /// A dataset name that cannot be used (names are 1 to 64 of `A-Z a-z 0-9 _ -`).
    InvalidName(String),
    /// The requested version is not published.
    UnknownVersion {
        /// The dataset.
        dataset: String,
        /// The version asked for.
        version: u64,
    },
    /// A file stayed locked by another handle through every retry.
    Busy {
        /// What was being done.
        operation: &'static str,
        /// How many attempts were made.
        attempts: u32,
    },
    /// A fault injected at a failpoint.
    Injected(Injected),
    /// SQLite reported an error.
    Sqlite(String),
    /// A filesystem operation failed.
    Io(String),
    /// A file on disk is not what the engine wrote.
    Corrupt(String),
    /// A setting outside what it accepts (the message names both).
    InvalidSetting(String),
}

impl EngineError {
    /// Whether a retry on a fresh base may succeed.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            EngineError::Conflict { .. }
                | EngineError::Migrating { .. }
                | EngineError::SchemaChanged { .. }
        )
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::Conflict {
                table,
                expected,
                current,
            } => write!(
                f,
                "conflict on {table}: expected manifest version {expected} but current is {current}"
            ),
            EngineError::Migrating { table, migration } => {
                write!(f, "conflict on {table}: migration {migration} holds it")
            }
            EngineError::SchemaChanged { expected, current } => write!(
                f,
                "conflict: the load was prepared for catalog version {expected} but it is now {current}"
            ),
            EngineError::InvalidSchema(message) => write!(f, "invalid schema change: {message}"),
            EngineError::BadRecord { key, reason } => {
                write!(f, "legacy record {key:?} cannot be decoded: {reason}")
            }
            EngineError::UnknownDataset(name) => write!(f, "unknown dataset {name:?}"),
            EngineError::InvalidName(name) => write!(
                f,
                "invalid dataset name {name:?}: names are 1 to 64 characters of A-Z a-z 0-9 _ -"
            ),
            EngineError::UnknownVersion { dataset, version } => {
                write!(f, "dataset {dataset:?} has no published version {version}")
            }
            EngineError::Busy {
                operation,
                attempts,
            } => {
                write!(f, "{operation}: still locked after {attempts} attempts")
            }
            EngineError::Injected(injected) => write!(f, "{injected}"),
            EngineError::Sqlite(message) => write!(f, "sqlite: {message}"),
            EngineError::Io(message) => write!(f, "io: {message}"),
            EngineError::Corrupt(message) => write!(f, "corrupt store: {message}"),
            EngineError::InvalidSetting(message) => write!(f, "invalid setting: {message}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<Injected> for EngineError {
    fn from(injected: Injected) -> Self {
        EngineError::Injected(injected)
    }
}

impl From<rusqlite::Error> for EngineError {
    fn from(error: rusqlite::Error) -> Self {
        EngineError::Sqlite(error.to_string())
    }
}

impl From<std::io::Error> for EngineError {
    fn from(error: std::io::Error) -> Self {
        EngineError::Io(error.to_string())
    }
}

/// The engine's result type.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;
