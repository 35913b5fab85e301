//! The delete-vs-fetch workload under the simulator: source hosts serving repositories that
//! gain revisions, server hosts (engine handles on one store) creating, deleting and syncing
//! scopes, network faults and crashes; then healing, a converging sync on every server and
//! the final checks.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faultline::sources::{self, Repository, Revision};
use faultline::{Engine, EngineError, SyncSettings, Synced};
use faultline_sim::world::World;

use super::invariants::{self, Pass};
use super::plan::{self, Op, Plan};
use crate::support;

/// The port every source serves on.
const PORT: u16 = 7000;
/// The bound on each call to a source.
const TIMEOUT: Duration = Duration::from_millis(150);
/// The bound on one sync pass: every source's two calls at the lowest concurrency, and slack.
const PASS_BOUND: Duration = Duration::from_secs(3);
/// Passes a server makes after healing before its mirrors must have converged.
const CONVERGE_PASSES: usize = 20;

/// What every node of the run shares.
struct Shared {
    world: World,
    plan: Plan,
    repositories: Vec<Repository>,
    addresses: Vec<SocketAddr>,
    progress: Vec<AtomicUsize>,
    done: Vec<AtomicBool>,
    passes: Mutex<Vec<Pass>>,
    start: tokio::time::Instant,
}

pub async fn run(world: World) {
    faultline::sql::seed_prng(world.seed());
    let plan = plan::draw(|site, bound| world.draw(site, bound));
    let sources = plan.later_revisions.len();
    let repositories: Vec<Repository> = (0..sources).map(|_| Repository::default()).collect();
    let mut addresses = Vec::new();
    for (index, repository) in repositories.iter().enumerate() {
        repository.commit(revision(index, 1));
        let served = repository.clone();
        let ip: IpAddr = world.add_host(&Plan::source_name(index), move || serve(served.clone()));
        addresses.push(SocketAddr::new(ip, PORT));
    }
    let black_hole = plan.black_hole.then(|| {
        let ip = world.add_host(Plan::BLACK_HOLE, swallow);
        SocketAddr::new(ip, PORT)
    });
    if !set_up(&world, &addresses, black_hole).await {
        return;
    }
    schedule_revisions(&world, &plan, &repositories);
    let servers = plan.servers.len();
    let shared = Arc::new(Shared {
        world: world.clone(),
        plan,
        repositories,
        addresses,
        progress: (0..servers).map(|_| AtomicUsize::new(0)).collect(),
        done: (0..servers).map(|_| AtomicBool::new(false)).collect(),
        passes: Mutex::new(Vec::new()),
        start: tokio::time::Instant::now(),
    });
    for server in 0..servers {
        let shared = shared.clone();
        world.add_host(&Plan::server_name(server), move || {
            serve_scopes(shared.clone(), server)
        });
    }
    let all_done = || shared.done.iter().all(|d| d.load(Ordering::SeqCst));
    if !support::faults_then_heal(&world, all_done).await {
        if !world.has_failed() {
            world.fail_liveness("sync-completes", "the servers did not finish after healing");
        }
        return;
    }
    if !world.has_failed() {
        final_checks(&shared).await;
    }
}

/// The entries of revision `number` of source `index`.
fn revision(index: usize, number: u64) -> Revision {
    let mut entries = Revision::new();
    entries.insert(
        "README".to_owned(),
        format!("source {index} revision {number}").into_bytes(),
    );
    for file in 0..number {
        entries.insert(format!("file-{file}"), vec![number as u8; file as usize]);
    }
    entries
}

/// A source that accepts connections and never answers.
async fn swallow() {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", PORT))
        .await
        .expect("bind");
    let mut held = Vec::new();
    while let Ok((stream, _)) = listener.accept().await {
        held.push(stream);
    }
}

async fn serve(repository: Repository) {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", PORT))
        .await
        .expect("bind");
    sources::serve(listener, repository).await;
}

/// Creates `scope-i` naming source `i` for every source, before the servers start.
async fn set_up(world: &World, addresses: &[SocketAddr], black_hole: Option<SocketAddr>) -> bool {
    let Some(engine) = support::open_or_fail(world, "setup", "open-succeeds").await else {
        return false;
    };
    if let Some(address) = black_hole {
        let hole = Plan::BLACK_HOLE;
        if let Err(error) = engine.create_scope(hole, hole, address).await {
            world.fail(
                "open-succeeds",
                format!("setup could not create {hole}: {error}"),
            );
            return false;
        }
    }
    for (index, address) in addresses.iter().enumerate() {
        let scope = Plan::scope_name(index as u64);
        if let Err(error) = engine
            .create_scope(&scope, &Plan::source_name(index), *address)
            .await
        {
            world.fail(
                "open-succeeds",
                format!("setup could not create {scope}: {error}"),
            );
            return false;
        }
    }
    world.event("setup", format!("{} scopes", addresses.len()));
    true
}

fn schedule_revisions(world: &World, plan: &Plan, repositories: &[Repository]) {
    // swarm may leave out the sources' later revisions: every fetch then sees the first.
    if !world.allows("later-revisions") {
        return;
    }
    for (index, times) in plan.later_revisions.iter().enumerate() {
        for &at in times {
            let (world, repository) = (world.clone(), repositories[index].clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(at)).await;
                let number = repository.latest() + 1;
                repository.commit(revision(index, number));
                world.event(
                    "commit",
                    format!("{} revision {number}", Plan::source_name(index)),
                );
            });
        }
    }
}

/// A server: opens its handle, runs its remaining operations, then (once healed) syncs until
/// every named source's mirror is at its latest revision.
async fn serve_scopes(shared: Arc<Shared>, server: usize) {
    let world = &shared.world;
    let name = Plan::server_name(server);
    let Some(engine) = support::open_or_fail(world, &name, "open-succeeds").await else {
        return;
    };
    let ops = &shared.plan.servers[server];
    loop {
        let slot = shared.progress[server].fetch_add(1, Ordering::SeqCst);
        let Some((pause, op)) = ops.get(slot) else {
            break;
        };
        tokio::time::sleep(Duration::from_millis(*pause)).await;
        if !run_op(&shared, &engine, server, op).await {
            return;
        }
    }
    while !world.is_healed() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if converge(&shared, &engine, server).await {
        shared.done[server].store(true, Ordering::SeqCst);
    }
}

/// Runs one operation; false once a failure is recorded.
async fn run_op(shared: &Shared, engine: &Engine, server: usize, op: &Op) -> bool {
    let world = &shared.world;
    match op {
        Op::Create { scope, source } => {
            let (scope, source_name) = (Plan::scope_name(*scope), Plan::source_name(*source));
            match engine
                .create_scope(&scope, &source_name, shared.addresses[*source])
                .await
            {
                Ok(()) => world.event("create", format!("{scope} -> {source_name}")),
                Err(error) => world.event("create.error", format!("{scope}: {error}")),
            }
        }
        // swarm may leave deletes out of a seed: fetches then run on undisturbed.
        Op::Delete { .. } if !world.allows("delete") => {}
        Op::Delete { scope } => delete(shared, engine, &Plan::scope_name(*scope)).await,
        Op::Sync { concurrency } => {
            pass(shared, engine, server, *concurrency).await;
        }
    }
    !world.has_failed()
}

async fn delete(shared: &Shared, engine: &Engine, scope: &str) {
    let world = &shared.world;
    let Ok((scopes_before, before)) = engine.scope_state().await else {
        return;
    };
    let deleted = match engine.delete_scope(scope).await {
        Ok(deleted) => deleted,
        Err(error) => return world.event("delete.error", format!("{scope}: {error}")),
    };
    world.event("delete", format!("{scope}: {deleted}"));
    world.sometimes("scope-deleted", deleted);
    let Ok((scopes, after)) = engine.scope_state().await else {
        return;
    };
    let named = invariants::named(&scopes);
    let mirrored: BTreeSet<String> = after.keys().cloned().collect();
    let had: BTreeSet<String> = before.keys().cloned().collect();
    check(
        world,
        "delete-wins",
        invariants::delete_wins(&named, &mirrored),
    );
    check(
        world,
        "siblings-kept",
        invariants::siblings_kept(&had, &named, &mirrored),
    );
    // Only the deleted scope's own source: another handle's deletes are purged from this
    // handle's caches at its next sync.
    let source = scopes_before.get(scope).filter(|_| deleted);
    let cached: Vec<String> = engine
        .cached_sources()
        .into_iter()
        .filter(|s| Some(s) == source)
        .collect();
    check(
        world,
        "caches-drain",
        invariants::caches_drain(&cached, &named),
    );
}

fn check(world: &World, invariant: &str, result: Result<(), String>) {
    if let Err(message) = result {
        world.fail(invariant, message);
    }
}

/// One sync pass with its checks; returns the report if the pass ended.
async fn pass(
    shared: &Shared,
    engine: &Engine,
    server: usize,
    concurrency: usize,
) -> Option<faultline::SyncReport> {
    let world = &shared.world;
    let (scopes_before, before) = engine.scope_state().await.ok()?;
    let index = {
        let mut passes = shared.passes.lock().unwrap();
        passes.push(Pass {
            server,
            window: (clock(shared), None),
            fetched: BTreeSet::new(),
        });
        passes.len() - 1
    };
    let mut settings = SyncSettings::with_concurrency(concurrency);
    settings.timeout = TIMEOUT;
    let report = match tokio::time::timeout(PASS_BOUND, engine.sync_all(settings)).await {
        Err(_) => {
            world.fail_liveness(
                "sync-completes",
                format!("a pass at concurrency {concurrency} did not end within {PASS_BOUND:?}"),
            );
            return None;
        }
        Ok(Err(EngineError::InvalidSetting(why))) if concurrency == 0 => {
            world.event("sync.refused", why);
            shared.passes.lock().unwrap()[index].window.1 = Some(clock(shared));
            return None;
        }
        Ok(Err(error)) => {
            world.event("sync.error", &error);
            shared.passes.lock().unwrap()[index].window.1 = Some(clock(shared));
            return None;
        }
        Ok(Ok(_)) if concurrency == 0 => {
            world.fail(
                "bounded-concurrency",
                "a pass at concurrency 0 was not refused",
            );
            return None;
        }
        Ok(Ok(report)) => report,
    };
    world.event("sync", describe(&report));
    world.sometimes("fetch-failed", !report.failures().is_empty());
    let fetched: BTreeSet<String> = report
        .sources
        .iter()
        .filter(|(_, synced)| matches!(synced, Synced::Fetched(_)))
        .map(|(source, _)| source.clone())
        .collect();
    let passes = {
        let mut passes = shared.passes.lock().unwrap();
        passes[index].window.1 = Some(clock(shared));
        passes[index].fetched = fetched.clone();
        passes.clone()
    };
    let bound = invariants::bounded_concurrency(report.most_in_flight, concurrency, fetched.len());
    check(world, "bounded-concurrency", bound);
    let (scopes_after, after) = engine.scope_state().await.ok()?;
    let reported: BTreeSet<String> = report.sources.keys().cloned().collect();
    let (named_before, named_after) = (
        invariants::named(&scopes_before),
        invariants::named(&scopes_after),
    );
    check(
        world,
        "isolation",
        invariants::isolation(&named_before, &named_after, &reported),
    );
    for (source, _) in report.failures() {
        let stamps = (
            before.get(source).map(|m| m.fetched_at_ms),
            after.get(source).map(|m| m.fetched_at_ms),
        );
        let honest = invariants::fetch_stamp_honest(source, stamps, &passes[index], &passes);
        check(world, "fetch-stamp-honest", honest);
    }
    check_mirrors(shared, &after);
    Some(report)
}

/// Simulated nanoseconds since the run's nodes started.
fn clock(shared: &Shared) -> u64 {
    shared.start.elapsed().as_nanos() as u64
}

fn describe(report: &faultline::SyncReport) -> String {
    let parts: Vec<String> = report
        .sources
        .iter()
        .map(|(source, synced)| match synced {
            Synced::Fetched(n) => format!("{source} fetched {n}"),
            Synced::Unchanged(n) => format!("{source} at {n}"),
            Synced::Deleted => format!("{source} deleted meanwhile"),
            Synced::Failed(why) => format!("{source} failed ({why})"),
        })
        .collect();
    format!(
        "{} (at most {} in flight)",
        parts.join(", "),
        report.most_in_flight
    )
}

/// The repository of the source named `source` (none for the black hole).
fn repository<'a>(shared: &'a Shared, source: &str) -> Option<&'a Repository> {
    (0..shared.repositories.len())
        .find(|i| Plan::source_name(*i) == source)
        .map(|i| &shared.repositories[i])
}

fn check_mirrors(shared: &Shared, mirrors: &BTreeMap<String, faultline::Mirror>) {
    for (source, mirror) in mirrors {
        let expected = repository(shared, source).and_then(|r| r.revision(mirror.revision));
        let atomic =
            invariants::mirror_atomic(source, mirror.revision, &mirror.entries, expected.as_ref());
        check(&shared.world, "mirror-atomic", atomic);
    }
}

/// After healing: passes until every named source's mirror is at its latest revision.
async fn converge(shared: &Shared, engine: &Engine, server: usize) -> bool {
    let world = &shared.world;
    for _ in 0..CONVERGE_PASSES {
        if pass(shared, engine, server, plan::MAX_CONCURRENCY as usize)
            .await
            .is_some()
        {
            let Ok((scopes, mirrors)) = engine.scope_state().await else {
                continue;
            };
            let live = invariants::named(&scopes)
                .into_iter()
                .filter(|s| s != Plan::BLACK_HOLE);
            let behind = live.into_iter().find(|source| {
                let latest = repository(shared, source).map_or(0, Repository::latest);
                mirrors.get(source).map_or(0, |m| m.revision) < latest
            });
            if behind.is_none() {
                let cached = engine.cached_sources();
                check(
                    world,
                    "caches-drain",
                    invariants::caches_drain(&cached, &invariants::named(&scopes)),
                );
                return !world.has_failed();
            }
        }
        if world.has_failed() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.fail_liveness(
        "sync-completes",
        format!(
            "{} mirrors had not reached their sources' latest revisions after healing",
            Plan::server_name(server)
        ),
    );
    false
}

/// The last checks, on a fresh handle: no mirror without a scope, every mirror one revision.
async fn final_checks(shared: &Shared) {
    let world = &shared.world;
    let Some(engine) = support::open_or_fail(world, "checker", "open-succeeds").await else {
        return;
    };
    let Ok((scopes, mirrors)) = engine.scope_state().await else {
        return;
    };
    let mirrored: BTreeSet<String> = mirrors.keys().cloned().collect();
    check(
        world,
        "delete-wins",
        invariants::delete_wins(&invariants::named(&scopes), &mirrored),
    );
    check_mirrors(shared, &mirrors);
    if world.has_failed() || !crate::store_clean::check_world(world, &[]).await {
        return;
    }
    world.event(
        "checked",
        format!("{} scopes, {} mirrors", scopes.len(), mirrors.len()),
    );
}
