//! Writes a store in the legacy format: one node type `item` (properties name, size, note;
//! legacy encoding) holding COUNT sample records (`faultline::legacy::sample_record`).
//!
//! `cargo run --release --example legacy_fixture -- DIR COUNT`
//! The small store in fixtures/legacy-small/ was made with COUNT = 60.

use faultline::schema::{Encoding, NodeType, Property, Schema};
use faultline::{legacy, Engine};

/// Records imported per transaction.
const CHUNK: u64 = 10_000;

/// The catalog of a legacy store.
pub fn legacy_schema() -> Schema {
    let properties = ["name", "size", "note"]
        .iter()
        .map(|p| (p.to_string(), Property::default()))
        .collect();
    let item = NodeType {
        encoding: Encoding::Legacy,
        properties,
    };
    Schema {
        version: 1,
        node_types: [("item".to_owned(), item)].into_iter().collect(),
    }
}

/// `old` changed as far as a migration goes: re-encoded to JSON, a property added with a
/// default (`color`) and one dropped for good (`size`), as version 2.
pub fn widest_change(old: &Schema) -> Schema {
    let mut new = old.clone();
    new.version = 2;
    let item = new.node_types.get_mut("item").expect("the item type");
    item.encoding = Encoding::Json;
    item.properties.insert(
        "color".into(),
        Property {
            default: Some("none".into()),
            soft_dropped: false,
        },
    );
    item.properties.remove("size");
    new
}

/// Imports sample records `0..count` into the `item` table, `CHUNK` per transaction.
pub async fn import_samples(
    engine: &Engine,
    count: u64,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    for start in (0..count).step_by(CHUNK as usize) {
        let rows: Vec<(String, Vec<u8>)> = (start..(start + CHUNK).min(count))
            .map(|i| {
                Ok((
                    legacy::sample_key(i),
                    legacy::encode(&legacy::sample_record(i))?,
                ))
            })
            .collect::<Result<_, String>>()?;
        engine.import_legacy("item", &rows).await?;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: legacy_fixture DIR COUNT (DIR must not exist yet)";
    let dir = std::path::PathBuf::from(args.next().ok_or(usage)?);
    let count: u64 = args.next().ok_or(usage)?.parse().map_err(|_| usage)?;
    if dir.exists() {
        return Err(format!("{} exists; {usage}", dir.display()).into());
    }
    let (engine, _) = Engine::open(&dir, "legacy-fixture").await?;
    engine.define_schema(&legacy_schema()).await?;
    import_samples(&engine, count).await?;
    drop(engine);
    std::fs::remove_dir_all(dir.join("owners")).ok();
    println!("wrote {count} legacy records to {}", dir.display());
    Ok(())
}
