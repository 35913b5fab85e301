//! A tiny SQLite-backed inventory service ([`service`]) and a Faultline scenario over it
//! ([`scenario`]): the example of `docs/own-crate.md`. The service is ordinary code (tokio,
//! rusqlite, a failpoint, a plain file through the file seam); the scenario runs several
//! processes of it under the simulator and checks two invariants.
#![deny(missing_docs)]

pub mod scenario;
pub mod service;
