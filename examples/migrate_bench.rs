//! Figures for legacy migrations in real mode (files on disk, multi-threaded tokio): builds
//! a store of COUNT legacy records, then times `apply_schema` re-encoding them to JSON (with an
//! added property and a hard drop in the same migration), and prints records per second.
//!
//! `cargo run --release --example migrate_bench -- [COUNT] [BATCH] [DIR]`
//! (defaults 100000 records, batches of 5000, a directory under the system temp dir)

use std::time::Instant;

use faultline::migrate::MigrationOptions;
use faultline::Engine;

#[path = "legacy_fixture.rs"]
#[allow(dead_code)]
mod fixture;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let count: u64 = args
        .next()
        .map_or(Ok(100_000), |a| a.parse())
        .map_err(|_| "COUNT: a whole number")?;
    let batch: u64 = args
        .next()
        .map_or(Ok(5_000), |a| a.parse())
        .map_err(|_| "BATCH: a whole number")?;
    let dir = args.next().map_or_else(
        || std::env::temp_dir().join(format!("faultline-migrate-bench-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    std::fs::remove_dir_all(&dir).ok();
    let (engine, _) = Engine::open(&dir, "bench").await?;
    engine.define_schema(&fixture::legacy_schema()).await?;
    let started = Instant::now();
    fixture::import_samples(&engine, count).await?;
    let import = started.elapsed();
    let new = fixture::widest_change(&engine.schema().await?);
    let started = Instant::now();
    let report = engine
        .apply_schema(
            &new,
            &MigrationOptions::default()
                .allow_data_loss()
                .batch_size(batch),
        )
        .await?;
    let migrate = started.elapsed();
    let rate = count as f64 / migrate.as_secs_f64();
    println!(
        "records: {count}, batch size: {batch}, steps: {}",
        report.steps
    );
    println!(
        "import:    {:.2}s ({:.0} records/s)",
        import.as_secs_f64(),
        count as f64 / import.as_secs_f64()
    );
    println!(
        "migration: {:.2}s ({rate:.0} records/s re-encoded, added and dropped)",
        migrate.as_secs_f64()
    );
    println!(
        "1,000,000 records at this rate: about {:.0}s",
        1_000_000.0 / rate
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
