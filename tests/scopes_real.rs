//! Real-mode tests of scopes and mirrors: sources served over loopback TCP on
//! multi-threaded tokio, real SQLite files, a source that accepts and never answers.
#![cfg(not(madsim))]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use faultline::sources::{self, Repository, Revision};
use faultline::{CacheSizes, Engine, EngineError, SyncSettings, Synced};

fn revision(entries: &[(&str, &str)]) -> Revision {
    entries
        .iter()
        .map(|(name, bytes)| (name.to_string(), bytes.as_bytes().to_vec()))
        .collect()
}

/// Serves `repository` on a loopback port; returns its address.
async fn serve(repository: Repository) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(sources::serve(listener, repository));
    address
}

/// A source that accepts connections and never answers (a black hole).
async fn black_hole() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    address
}

async fn open(dir: &std::path::Path) -> Engine {
    Engine::open(dir, "server").await.unwrap().0
}

fn short() -> SyncSettings {
    let mut settings = SyncSettings::with_concurrency(2);
    settings.timeout = Duration::from_millis(300);
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_all_mirrors_every_source_once_and_reports_an_unreachable_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let (alpha, beta) = (Repository::default(), Repository::default());
    alpha.commit(revision(&[("README", "alpha 1")]));
    beta.commit(revision(&[("a", "beta 1")]));
    beta.commit(revision(&[("a", "beta 2"), ("b", "")]));
    let (alpha_at, beta_at, hole) = (
        serve(alpha.clone()).await,
        serve(beta).await,
        black_hole().await,
    );
    engine
        .create_scope("team-a", "alpha", alpha_at)
        .await
        .unwrap();
    engine
        .create_scope("team-b", "alpha", alpha_at)
        .await
        .unwrap();
    engine
        .create_scope("team-c", "beta", beta_at)
        .await
        .unwrap();
    engine.create_scope("team-d", "hole", hole).await.unwrap();
    let started = Instant::now();
    let report = engine.sync_all(short()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        report.sources.len(),
        3,
        "one fetch per distinct source: {report:?}"
    );
    assert_eq!(report.sources["alpha"], Synced::Fetched(1));
    assert_eq!(report.sources["beta"], Synced::Fetched(2));
    assert!(
        matches!(&report.sources["hole"], Synced::Failed(why) if why.contains("did not answer")),
        "{report:?}"
    );
    assert!(report.most_in_flight == 2, "{report:?}");
    let beta_mirror = engine.mirror("beta").await.unwrap().unwrap();
    assert_eq!(beta_mirror.entries, revision(&[("a", "beta 2"), ("b", "")]));
    assert_eq!(engine.mirror("hole").await.unwrap(), None);
    // A new revision is fetched by the next pass; an unchanged source is not refetched.
    alpha.commit(revision(&[("README", "alpha 2")]));
    let again = engine.sync_all(short()).await.unwrap();
    assert_eq!(again.sources["alpha"], Synced::Fetched(2));
    assert_eq!(again.sources["beta"], Synced::Unchanged(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_fetch_never_advances_the_last_fetched_time() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let repository = Repository::default();
    repository.commit(revision(&[("x", "1")]));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(sources::serve(listener, repository.clone()));
    engine.create_scope("s", "src", address).await.unwrap();
    engine.sync_all(short()).await.unwrap();
    let before = engine.mirror("src").await.unwrap().unwrap();
    server.abort();
    let _ = server.await;
    repository.commit(revision(&[("x", "2")]));
    tokio::time::sleep(Duration::from_millis(5)).await;
    let report = engine.sync_all(short()).await.unwrap();
    assert!(
        matches!(report.sources["src"], Synced::Failed(_)),
        "{report:?}"
    );
    assert_eq!(engine.mirror("src").await.unwrap().unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_keeps_a_shared_mirror_and_removes_the_last_one_with_its_caches() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let baseline = engine.cache_sizes();
    let (one, two) = (Repository::default(), Repository::default());
    one.commit(revision(&[("f", "one")]));
    two.commit(revision(&[("f", "two")]));
    let (one_at, two_at) = (serve(one).await, serve(two).await);
    engine.create_scope("a", "one", one_at).await.unwrap();
    engine.create_scope("b", "one", one_at).await.unwrap();
    engine.create_scope("c", "two", two_at).await.unwrap();
    engine.sync_all(short()).await.unwrap();
    assert_eq!(
        engine.cache_sizes(),
        CacheSizes {
            locks: 2,
            fetched: 2
        }
    );
    assert!(engine.delete_scope("a").await.unwrap());
    assert!(
        engine.mirror("one").await.unwrap().is_some(),
        "scope b still uses it"
    );
    assert!(engine.mirror("two").await.unwrap().is_some());
    assert!(engine.delete_scope("b").await.unwrap());
    assert_eq!(engine.mirror("one").await.unwrap(), None);
    assert!(
        engine.mirror("two").await.unwrap().is_some(),
        "a sibling source is untouched"
    );
    assert!(!engine.delete_scope("b").await.unwrap(), "already gone");
    assert!(engine.delete_scope("c").await.unwrap());
    assert_eq!(engine.cache_sizes(), baseline);
    let report = engine.sync_all(short()).await.unwrap();
    assert!(
        report.sources.is_empty(),
        "a deleted source is not fetched back: {report:?}"
    );
    assert_eq!(engine.mirror("one").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_concurrency_below_one_is_refused_not_a_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        engine.sync_all(SyncSettings::with_concurrency(0)),
    );
    let error = refused.await.expect("no deadlock").unwrap_err();
    assert!(matches!(error, EngineError::InvalidSetting(_)), "{error}");
    assert!(error.to_string().contains("at least 1"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_syncing_and_deleting_one_store_leave_no_mirror_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (open(dir.path()).await, open(dir.path()).await);
    let repository = Repository::default();
    repository.commit(revision(&[("f", "1")]));
    let address = serve(repository.clone()).await;
    for round in 0..20 {
        first.create_scope("only", "shared", address).await.unwrap();
        repository.commit(revision(&[("f", &round.to_string())]));
        let (synced, deleted) = tokio::join!(second.sync_all(short()), first.delete_scope("only"));
        synced.unwrap();
        assert!(deleted.unwrap());
        assert_eq!(
            first.mirror("shared").await.unwrap(),
            None,
            "round {round}: a completed delete wins over an in-flight fetch"
        );
    }
}
