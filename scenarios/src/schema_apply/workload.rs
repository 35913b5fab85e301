//! The simulated schema-apply run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use faultline::{legacy, migrate, sidecar, Engine, EngineError};
use faultline_sim::world::World;
use serde_json::{json, Map};

use super::invariants::{self, Snapshot};
use super::plan::{self, Plan, NODE_TYPE};
use crate::concurrent_writers::ledger::Status;
use crate::support;

/// Attempts a load makes through conflicts (a migration holds the table meanwhile).
const LOAD_ATTEMPTS: u32 = 400;

#[derive(Default)]
struct Progress {
    migrator_starts: u32,
    migrator_done: bool,
    refused: bool,
    loads: BTreeMap<(usize, usize), Status>,
    next_load: Vec<usize>,
    loader_done: Vec<bool>,
}

struct Shared {
    world: World,
    plan: Plan,
    progress: Mutex<Progress>,
}

impl Shared {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn acked(&self) -> Vec<String> {
        let progress = self.progress();
        let acked = progress
            .loads
            .iter()
            .filter(|(_, s)| matches!(s, Status::Acked { .. }));
        acked.map(|((l, n), _)| Plan::load_key(*l, *n)).collect()
    }
}

pub async fn run(world: World) {
    faultline::sql::seed_prng(world.seed());
    let plan = plan::draw(|site, bound| world.draw(site, bound));
    world.event(
        "plan",
        format!(
            "{} records, bad {:?}, {:?}, {:?}, batch {}, loaders {:?}",
            plan.originals.len(),
            plan.bad_key,
            plan.policy,
            plan.changes,
            plan.batch_size,
            plan.loaders
        ),
    );
    let Some(_keeper) = setup(&world, &plan).await else {
        return;
    };
    let progress = Progress {
        next_load: vec![0; plan.loaders.len()],
        loader_done: vec![false; plan.loaders.len()],
        ..Progress::default()
    };
    let shared = Arc::new(Shared {
        world: world.clone(),
        plan,
        progress: Mutex::new(progress),
    });
    start_nodes(&shared);
    if !support::faults_then_heal(&world, || all_done(&shared)).await {
        let bound = support::LIVENESS_BOUND;
        world.fail_liveness(
            "nodes-finish",
            format!("not finished {bound:?} after healing"),
        );
        return;
    }
    check_final(&shared).await;
}

async fn setup(world: &World, plan: &Plan) -> Option<Engine> {
    let engine = support::open_or_fail(world, "setup", "open-succeeds").await?;
    engine
        .define_schema(&plan.old_schema())
        .await
        .expect("setup runs without faults");
    let mut rows: Vec<(String, Vec<u8>)> = plan
        .originals
        .iter()
        .map(|(k, r)| (k.clone(), legacy::encode(r).expect("encodable")))
        .collect();
    if let Some(bad) = &plan.bad_key {
        rows.push((bad.clone(), plan::BAD_RECORD.to_vec()));
    }
    engine
        .import_legacy(NODE_TYPE, &rows)
        .await
        .expect("setup runs without faults");
    Some(engine)
}

fn start_nodes(shared: &Arc<Shared>) {
    let node_shared = shared.clone();
    shared
        .world
        .add_node("migrator", move || run_migrator(node_shared.clone()));
    for loader in 0..shared.plan.loaders.len() {
        let node_shared = shared.clone();
        shared.world.add_node(&plan::loader_name(loader), move || {
            run_loader(node_shared.clone(), loader)
        });
    }
}

fn all_done(shared: &Shared) -> bool {
    let progress = shared.progress();
    progress.migrator_done && progress.loader_done.iter().all(|d| *d)
}

async fn snapshot(engine: &Engine) -> faultline::Result<Snapshot> {
    Ok(Snapshot {
        catalog: engine.schema().await?,
        records: engine.records(NODE_TYPE).await?,
        quarantined: engine.quarantined(NODE_TYPE).await?,
        version: engine
            .head(&faultline::schema::table_name(NODE_TYPE))
            .await?
            .version,
        leases: engine.leases().await?.len(),
        migration_sidecars: migrate::pending(engine.dir())?.len(),
        write_sidecars: sidecar::list(engine.dir())?.sidecars.len(),
    })
}

/// The migrating node: applies the change; after a restart, checks the store it reopened.
/// A restart makes it not done again, so that the run waits for that check.
async fn run_migrator(shared: Arc<Shared>) {
    let world = &shared.world;
    shared.progress().migrator_done = false;
    let Some(engine) = support::open_or_fail(world, "migrator", "open-succeeds").await else {
        shared.progress().migrator_done = true;
        return;
    };
    let restarted = shared.progress().migrator_starts > 0;
    shared.progress().migrator_starts += 1;
    if restarted {
        check_reopened(&shared, &engine).await;
    }
    // Another handle may be finishing a failed migration (a reopen claimed it): give it time.
    let mut backoff = support::Backoff::new(Duration::from_millis(5));
    while !migration_settled(&shared, &engine).await {
        match engine
            .apply_schema(&shared.plan.new_schema(), &shared.plan.options())
            .await
        {
            Ok(report) => {
                world.sometimes("migration-applied", true);
                world.event(
                    "migrated",
                    format!(
                        "{} steps, {} re-encoded, {} quarantined",
                        report.steps,
                        report.reencoded,
                        report.quarantined.len()
                    ),
                )
            }
            Err(EngineError::BadRecord { key, reason }) => {
                world.event("migration.refused", format!("{key}: {reason}"));
                world.sometimes("migration-refused", true);
                shared.progress().refused = true;
            }
            Err(error) => {
                world.event("migrate.error", &error);
                finish_started(world, &engine).await;
                backoff.pause().await;
            }
        }
    }
    match engine.leases().await {
        Ok(leases) => {
            if let Err(message) = invariants::leases_released(engine.owner(), &leases) {
                world.fail("leases-released", message);
            }
        }
        Err(error) => world.event("leases.error", &error),
    }
    shared.progress().migrator_done = true;
    world.event("migrator.done", "");
}

/// Whether the catalog is the new schema or the migration was refused.
async fn migration_settled(shared: &Shared, engine: &Engine) -> bool {
    let mut backoff = support::Backoff::new(Duration::from_millis(2));
    loop {
        match engine.schema().await {
            Ok(catalog) => return catalog.version >= 2 || shared.progress().refused,
            Err(error) => {
                shared.world.event("schema.error", &error);
                backoff.pause().await;
            }
        }
    }
}

/// After `apply_schema` failed mid-way: finish what it had started.
async fn finish_started(world: &World, engine: &Engine) {
    let mut backoff = support::Backoff::new(Duration::from_millis(2));
    while let Err(error) = engine.resume_migrations().await {
        world.event("resume.error", &error);
        backoff.pause().await;
    }
}

/// schema-atomic on the store a restarted migrator reopened, when nothing is pending. A
/// snapshot is several reads, and another handle may be finishing the migration between
/// them (a preemption opens that window): only a snapshot that a second one repeats is
/// checked.
async fn check_reopened(shared: &Shared, engine: &Engine) {
    let stable = match (snapshot(engine).await, snapshot(engine).await) {
        (Ok(first), Ok(second)) if first == second => Ok(second),
        (Ok(_), Ok(_)) => {
            return shared
                .world
                .event("snapshot.moving", "store changed while read")
        }
        (Err(error), _) | (_, Err(error)) => Err(error),
    };
    match stable {
        Ok(snapshot) if snapshot.quiescent() => {
            if let Err(message) = invariants::schema_atomic(&shared.plan, &snapshot) {
                shared
                    .world
                    .fail("schema-atomic", format!("after reopening: {message}"));
            }
        }
        Ok(_) => {}
        Err(error) => shared.world.event("snapshot.error", &error),
    }
}

/// A loading node: loads its records in order, resuming after a restart (which makes it
/// not done again until it has looked at what is left).
async fn run_loader(shared: Arc<Shared>, loader: usize) {
    let world = &shared.world;
    shared.progress().loader_done[loader] = false;
    let Some(engine) =
        support::open_or_fail(world, &plan::loader_name(loader), "open-succeeds").await
    else {
        shared.progress().loader_done[loader] = true;
        return;
    };
    loop {
        let n = {
            let mut progress = shared.progress();
            let mut n = progress.next_load[loader];
            if progress.loads.get(&(loader, n)) == Some(&Status::InFlight) {
                progress.loads.insert((loader, n), Status::InDoubt);
                n += 1;
                progress.next_load[loader] = n;
            }
            if n >= shared.plan.loaders[loader] {
                break;
            }
            progress.loads.insert((loader, n), Status::InFlight);
            n
        };
        let status = load_with_retry(world, &engine, loader, n).await;
        let mut progress = shared.progress();
        progress.loads.insert((loader, n), status);
        progress.next_load[loader] = n + 1;
    }
    shared.progress().loader_done[loader] = true;
}

async fn load_with_retry(world: &World, engine: &Engine, loader: usize, n: usize) -> Status {
    let key = Plan::load_key(loader, n);
    let mut record = Map::new();
    record.insert("name".into(), json!(key.clone()));
    for _ in 0..LOAD_ATTEMPTS {
        match engine
            .load(NODE_TYPE, &[(key.clone(), record.clone())])
            .await
        {
            Ok(receipt) => {
                world.event("load.ok", format!("{key} at v{}", receipt.version));
                return Status::Acked {
                    version: receipt.version,
                    appended: receipt.appended,
                };
            }
            Err(error) if error.is_conflict() => tokio::time::sleep(Duration::from_millis(3)).await,
            Err(error) => {
                world.event("load.error", &error);
                return Status::Failed(error.to_string());
            }
        }
    }
    Status::Failed(format!(
        "{key}: still conflicting after {LOAD_ATTEMPTS} attempts"
    ))
}

/// After the run: the invariants on the live store, then two reopens of a crash image.
async fn check_final(shared: &Shared) {
    let world = &shared.world;
    let acked = shared.acked();
    let Some(engine) = support::open_or_fail(world, "checker", "open-succeeds").await else {
        return;
    };
    let live = snapshot(&engine).await.expect("no faults after healing");
    let checks = [
        (
            "schema-atomic",
            invariants::schema_atomic(&shared.plan, &live),
        ),
        (
            "data-preserved",
            invariants::data_preserved(&shared.plan, &live),
        ),
        ("no-lost-write", invariants::no_lost_write(&acked, &live)),
    ];
    for (name, result) in checks {
        if let Err(message) = result {
            world.fail(name, message);
            return;
        }
    }
    let image = world.capture_image();
    let first = reopen_snapshot(world, &image, "image-first").await;
    let second = reopen_snapshot(world, &image, "image-second").await;
    if let (Some(first), Some(second)) = (first, second) {
        if let Err(message) = invariants::recovery_idempotent(&first, &second) {
            world.fail("recovery-idempotent", message);
            return;
        }
        if !crate::store_clean::check_world(world, &[]).await {
            return;
        }
        world.event(
            "checked",
            format!(
                "catalog v{}, {} records, {} quarantined",
                second.catalog.version,
                second.records.len(),
                second.quarantined.len()
            ),
        );
    }
}

async fn reopen_snapshot(world: &World, image: &std::path::Path, label: &str) -> Option<Snapshot> {
    match Engine::open(image, label).await {
        Ok((engine, _)) => Some(snapshot(&engine).await.expect("no faults after healing")),
        Err(error) => {
            world.fail(
                "open-succeeds",
                format!("{label} could not open the crash image: {error}"),
            );
            None
        }
    }
}
