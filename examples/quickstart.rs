//! The engine used for real: open a store, create a dataset, append, read it back.
//!
//! `cargo run --release --example quickstart -- /tmp/store`
//! (ci/production-build also builds it to prove a production binary carries no failpoints.)

use faultline::{Engine, Item};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "quickstart-store".to_owned());
    let (engine, recovery) = Engine::open(std::path::Path::new(&dir), "quickstart").await?;
    println!("opened {dir}: recovery {recovery:?}");
    engine.create_dataset("events").await?;
    let items: Vec<Item> = (0..3)
        .map(|i| Item {
            key: format!("event-{i}"),
            payload: format!("payload {i}"),
        })
        .collect();
    let receipt = loop {
        match engine.append("events", &items).await {
            Err(error) if error.is_conflict() => continue,
            other => break other?,
        }
    };
    println!(
        "published version {} with {} items",
        receipt.version, receipt.items_total
    );
    let streamed = engine
        .stream("events", receipt.version, 100)
        .await?
        .collect()
        .await?;
    println!(
        "version {} streams {} items",
        receipt.version,
        streamed.len()
    );
    Ok(())
}
