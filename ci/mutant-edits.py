#!/usr/bin/env python3
"""Regenerates fixtures/mutants/*.patch from the edits below, against the current src/.

Each mutant is a header (name, invariant, seed budget, scenario, story) and a list of exact
text replacements in one file. Run it after changing code a patch touches:
    python3 ci/mutant-edits.py            # every mutant
    python3 ci/mutant-edits.py NAME...    # some
It fails loudly if a replacement no longer matches, and restores src/ either way.
"""
import subprocess, sys

MUTANTS = [
    dict(name="publish-without-cas", invariant="no-lost-write", budget=3000, scenario="concurrent-writers",
         story="the publish upserts the new link instead of compare-and-swapping the table version, so two\n"
               "writers that pinned the same base both \"win\" version N+1 and the second silently replaces the first.",
         file="src/manifest.rs", edits=[
            ("""    if current != link.parent {
        return Err(EngineError::Conflict {
            table: table.to_owned(),
            expected: link.parent,
            current,
        });
    }
    connection.run(
        "INSERT INTO chain""", """    connection.run(
        "INSERT OR REPLACE INTO chain""")]),
    dict(name="rebase-without-repin", invariant="linear-chain", budget=3000, scenario="concurrent-writers",
         story="on a lost race the publish moves the write to the current head instead of failing, but keeps\n"
               "the link's stale parent and items_total: the chain forks (version v whose parent is not v-1).",
         file="src/manifest.rs", edits=[
            ("""    if current != link.parent {
        return Err(EngineError::Conflict {
            table: table.to_owned(),
            expected: link.parent,
            current,
        });
    }
    connection.run(
        "INSERT INTO chain""", """    let mut link = link.clone();
    link.version = current + 1;
    let link = &link;
    connection.run(
        "INSERT INTO chain""")]),
    dict(name="page-boundary", invariant="counts-agree", budget=3000, scenario="concurrent-writers",
         story="the stream resumes each page at the last row it already returned (>= instead of >), so a\n"
               "version longer than one page streams its page-boundary rows twice.",
         file="src/table.rs", edits=[("AND seq > ?2", "AND seq >= ?2")]),
    dict(name="conflict-swallowed", invariant="no-silent-drop", budget=3000, scenario="concurrent-writers",
         story="a lost race is turned into an empty success (the write is dropped, the caller is told it\n"
               "landed with 0 items), so the caller never retries.",
         file="src/append.rs", edits=[
            ("""            self.abandon(dataset, &link.txid).await;
            return Err(error);""", """            self.abandon(dataset, &link.txid).await;
            if error.is_conflict() {
                return Ok(Receipt { version: head.version, txid: link.txid, items_total: head.items_total, appended: 0 });
            }
            return Err(error);""")]),
    dict(name="recovery-forgets-published", invariant="durable-ack", budget=5000, scenario="concurrent-writers",
         story="the recovery sweep treats every leftover sidecar as an unpublished write and deletes its\n"
               "staged rows, even when the manifest already published them.",
         file="src/recovery.rs", edits=[("    let published = engine.published(&sidecar.txid).await?;", "    let published: Option<crate::Link> = None;")]),
    dict(name="single-step-pin", invariant="open-succeeds", budget=6000, scenario="schema-apply",
         story="the migration sidecar pins the single-step post-commit version (expected + 1) and the recovery\n"
               "classifier compares tables to that pin: a migration that moved a table several versions and\n"
               "crashed before removing its sidecar is \"re-published\" at the stale expected version on reopen,\n"
               "and the open fails: expected manifest version N but current is N+k (incident 001).",
         file="src/migrate.rs", edits=[
            ("let final_version = base + steps.len() as u64;", "let final_version = base + 1;"),
            ("        let completed = self.schema().await?.version >= sidecar.new.version;\n",
             "        let mut completed = true;\n        for plan in &sidecar.tables {\n            completed &= self.head(&plan.table).await?.version == plan.final_version;\n        }\n"),
            ("                if current < plan.base_version || current > plan.final_version {",
             "                if current < plan.base_version {"),
            ("let resume_from = current;", "let resume_from = plan.final_version - 1;")]),
    dict(name="republish-stale-expected", invariant="open-succeeds", budget=6000, scenario="schema-apply",
         story="recovery of an unfinished migration restarts its steps at the version the migration started\n"
               "from instead of where the table got to, so its first publish expects a stale version and the\n"
               "reopen fails.",
         file="src/migrate.rs", edits=[("let resume_from = current;", "let resume_from = plan.base_version;")]),
    dict(name="sidecar-removed-early", invariant="schema-atomic", budget=6000, scenario="schema-apply",
         story="the migration removes its sidecar before running its steps: a crash in the middle leaves\n"
               "half-migrated records under the old catalog, and recovery cannot know a migration was running.",
         file="src/migrate.rs", edits=[
            ("""        for plan in &sidecar.tables {
            self.run_steps(&sidecar, plan, plan.base_version, &mut report)""",
             """        remove_sidecar(self.dir(), &sidecar.id)?;
        for plan in &sidecar.tables {
            self.run_steps(&sidecar, plan, plan.base_version, &mut report)""")]),
    dict(name="null-becomes-absent", invariant="data-preserved", budget=3000, scenario="schema-apply",
         story="the legacy decoder skips null fields, so re-encoded records lose the difference between a\n"
               "property that is null and one that is absent.",
         file="src/legacy.rs", edits=[
            ("        if record.insert(name.clone(), value).is_some() {",
             "        if value.is_null() {\n            continue;\n        }\n        if record.insert(name.clone(), value).is_some() {")]),
    dict(name="bad-record-dropped", invariant="data-preserved", budget=3000, scenario="schema-apply",
         story="under the quarantine policy an undecodable legacy record is deleted instead of quarantined\n"
               "and is not reported: a silent drop.",
         file="src/migrate.rs", edits=[
            ("""                records::quarantine(connection, &key, &reason)?;
                report.quarantined.push((key, reason));""",
             """                let _ = reason;
                connection.run("DELETE FROM records WHERE key = ?1", [&key])?;""")]),
    dict(name="completed-migration-sidecar-kept", invariant="recovery-idempotent", budget=8000, scenario="schema-apply",
         story="recovery recognises a completed migration but keeps its sidecar, so every later open finds\n"
               "it again: recovery never converges to a clean store.",
         file="src/migrate.rs", edits=[
            ("""        fp!("engine.recovery.before_migration_sidecar_remove").await?;
        remove_sidecar(self.dir(), &sidecar.id)?;
        Ok(completed)""", """        fp!("engine.recovery.before_migration_sidecar_remove").await?;
        if !completed {
            remove_sidecar(self.dir(), &sidecar.id)?;
        }
        Ok(completed)""")]),
    dict(name="hard-drop-loses-loads", invariant="no-lost-write", budget=4000, scenario="schema-apply",
         story="the hard-drop rewrite rebuilds the table from the imported rows only, losing records that\n"
               "other handles loaded (and had acknowledged) before the migration started.",
         file="src/migrate.rs", edits=[
            ("""            StepKind::HardDrop { property } => {
                records::drop_property(&connection, property, step.limit)""", """            StepKind::HardDrop { property } => {
                let _ = connection.run("DELETE FROM records WHERE txid IS NOT NULL", []);
                records::drop_property(&connection, property, step.limit)""")]),
    dict(name="publish-error-self-deadlock", invariant="writers-finish", budget=3000, scenario="concurrent-writers",
         story="when a publish fails (a lost race or an I/O error), its error path reads the dataset's head\n"
               "for the message while still holding the handle's manifest connection: the handle waits on its\n"
               "own lock forever and the writer never finishes, even after every fault is healed.",
         file="src/append.rs", edits=[
            ("""        let result = swap_and_commit(&mut connection, dataset, link, catalog).await;
        if result.is_err() {""", """        let result = swap_and_commit(&mut connection, dataset, link, catalog).await;
        if result.is_err() {
            let _head = self.head(dataset).await;""")]),
    dict(name="claim-rereads-under-lock", invariant="nodes-finish", budget=6000, scenario="schema-apply",
         story="taking over a dead runner's migration re-reads the lease table to double-check the holder\n"
               "while already holding the handle's manifest connection: the reopening node waits on its own\n"
               "lock forever and never finishes.",
         file="src/migrate.rs", edits=[
            ("""        let mut connection = self.inner.manifest.lock().await;
        let (me, id, dead) = (self.owner(), sidecar.id.clone(), *holder);""",
             """        let mut connection = self.inner.manifest.lock().await;
        let _recheck = self.leases().await?;
        let (me, id, dead) = (self.owner(), sidecar.id.clone(), *holder);""")]),
    dict(name="stage-error-keeps-transaction", invariant="errors-are-faults", budget=3000, scenario="concurrent-writers",
         story="when staging fails (an I/O error before its commit), the error path returns without rolling\n"
               "back: the handle keeps its write transaction on the table file, so its own next append fails\n"
               "and other writers wait on a lock that is only released when the handle closes.",
         file="src/append.rs", edits=[
            ("""        let result = stage_rows(&mut connection, txid, rows).await;
        if result.is_err() {
            sql::rollback_quietly(&connection);
        }
        result""", """        stage_rows(&mut connection, txid, rows).await""")]),
    dict(name="commits-not-synced", invariant="durable-ack", budget=3000, scenario="concurrent-writers",
         story="a speed tweak sets synchronous=NORMAL: in WAL mode a commit is then no longer synced,\n"
               "so a publish the engine acknowledged is gone after a power loss.",
         file="src/sql.rs", edits=[
            ("""connection.pragma_update(None, "synchronous", "FULL")""",
             """connection.pragma_update(None, "synchronous", "NORMAL")""")]),
    dict(name="delete-path-from-loop", invariant="siblings-kept", budget=3000, scenario="delete-vs-fetch",
         story="the sibling check scans every remaining scope and removes the mirror named by the scan's\n"
               "loop variable, the last scope scanned, instead of the deleted scope's own source.",
         file="src/scopes.rs", edits=[
            ("""    let siblings: i64 = connection.query_row(
        "SELECT COUNT(*) FROM scopes WHERE source = ?1",
        [source],
        |row| row.get(0),
    )?;
    let mirror_removed = siblings == 0;
    if mirror_removed {""", """    let mut siblings = 0;
    let mut path = source.to_owned();
    let mut statement = connection.prepare("SELECT source FROM scopes ORDER BY name")?;
    for other in statement.query_map([], |row| row.get::<_, String>(0))? {
        path = other?;
        if path == source {
            siblings += 1;
        }
    }
    let source = path.as_str();
    let mirror_removed = siblings == 0;
    if mirror_removed {""")]),
    dict(name="fetch-ignores-delete", invariant="delete-wins", budget=3000, scenario="delete-vs-fetch",
         story="the fetch writes the mirror under the lock without checking that a scope still names the\n"
               "source, so a delete that completed while the fetch was in flight is undone.",
         file="src/scopes.rs", edits=[
            ("""    if named == 0 {
        return Ok(false);
    }
    connection.run("DELETE FROM entries WHERE source = ?1", [source])?;""", """    let _ = named;
    connection.run("DELETE FROM entries WHERE source = ?1", [source])?;""")]),
    dict(name="caches-not-purged", invariant="caches-drain", budget=3000, scenario="delete-vs-fetch",
         story="a delete that removes a source's last scope removes its mirror but leaves the handle's\n"
               "lock and last-fetched entries for it: a leak that grows with every create/delete.",
         file="src/scopes.rs", edits=[
            ("""        if removed.mirror_removed {
            self.inner.scopes.purge(&source);
        }""", """        let _ = removed.mirror_removed;""")]),
    dict(name="stamp-before-fetch", invariant="fetch-stamp-honest", budget=5000, scenario="delete-vs-fetch",
         story="the last-fetched time is stamped when the fetch starts, not when it succeeded, so a failed\n"
               "fetch looks recent and suppresses the next one.",
         file="src/scopes.rs", edits=[
            ("""        let held = self.held_revision(source).await?;""", """        {
            let mut guard = self.scopes_db().await?;
            let connection = guard.as_mut().expect("opened");
            let now = now_ms() as i64;
            sql::retry_busy(connection, "scopes.stamp", |c| {
                c.run("UPDATE mirrors SET fetched_at_ms = ?2 WHERE source = ?1", params![source, now])
            })
            .await?;
        }
        let held = self.held_revision(source).await?;""")]),
    dict(name="fetch-without-timeout", invariant="sync-completes", budget=3000, scenario="delete-vs-fetch",
         story="calls to a source have no timeout, so a source that accepts and never answers holds its\n"
               "fetch, its permit and the whole pass forever.",
         file="src/sources.rs", edits=[
            ("""    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or(Err(FetchError::Timeout(timeout)))""", """    let _ = timeout;
    call.await""")]),
    dict(name="no-concurrency-floor", invariant="sync-completes", budget=3000, scenario="delete-vs-fetch",
         story="a concurrency below 1 is not refused: a semaphore of 0 permits, and every pass asked for\n"
               "with 0 waits forever.",
         file="src/scopes.rs", edits=[
            ("""        if settings.concurrency < 1 {""", """        if settings.concurrency > usize::MAX - 1 {""")]),
    dict(name="concurrency-unbounded", invariant="bounded-concurrency", budget=3000, scenario="delete-vs-fetch",
         story="the semaphore is sized by the number of sources instead of the setting, so every fetch of\n"
               "a pass runs at once whatever N says.",
         file="src/scopes.rs", edits=[
            ("""        let gate = Arc::new(tokio::sync::Semaphore::new(settings.concurrency));""",
             """        let gate = Arc::new(tokio::sync::Semaphore::new(sources.len().max(settings.concurrency)));""")]),
    dict(name="failure-stops-the-pass", invariant="isolation", budget=3000, scenario="delete-vs-fetch",
         story="the pass stops collecting results at the first failed source, so one unreachable source\n"
               "hides every source after it from the report (and from the caller's retry).",
         file="src/scopes.rs", edits=[
            ("""            let synced = synced.unwrap_or_else(|error| Synced::Failed(error.to_string()));
            report.sources.insert(source, synced);""", """            let synced = synced.unwrap_or_else(|error| Synced::Failed(error.to_string()));
            let failed = matches!(synced, Synced::Failed(_));
            report.sources.insert(source, synced);
            if failed {
                break;
            }""")]),
    dict(name="mirror-written-in-two-steps", invariant="mirror-atomic", budget=5000, scenario="delete-vs-fetch",
         story="the fetch stamps the new revision and commits, then replaces the entries in a second\n"
               "transaction: a crash between the two leaves a mirror that says revision N and holds N-1.",
         file="src/scopes.rs", edits=[
            ("""    connection.run("DELETE FROM entries WHERE source = ?1", [source])?;
    for (name, bytes) in revision {""", """    connection.run(
        "INSERT INTO mirrors(source, revision, fetched_at_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT(source) DO UPDATE SET revision = ?2, fetched_at_ms = ?3",
        params![source, number as i64, now_ms() as i64],
    )?;
    connection.control("COMMIT")?;
    connection.control("BEGIN IMMEDIATE")?;
    connection.run("DELETE FROM entries WHERE source = ?1", [source])?;
    for (name, bytes) in revision {""")]),
    dict(name="eof-ends-the-fetch", invariant="mirror-atomic", budget=5000, scenario="delete-vs-fetch",
         story="the fetch reads entries until the connection closes instead of until END, so a connection\n"
               "reset mid-transfer leaves a mirror stamped with the new revision but holding only part of it.",
         file="src/sources.rs", edits=[
            ("""        loop {
            let line = read_line(&mut stream).await?;
            if line == "END" {""", """        loop {
            let line = match read_line(&mut stream).await {
                Ok(line) => line,
                // The source closes the connection after the last entry.
                Err(FetchError::Unreachable(_)) => return Ok(revision),
                Err(other) => return Err(other),
            };
            if line == "END" {""")]),
    dict(name="resync-skipped-on-reconnect", invariant="no-lost-update", budget=3000, scenario="broadcaster-disconnect",
         story="the worker resyncs from the store only on its first subscription; after a reconnect it trusts\n"
               "the notifications, and every change published while it was away is lost to its view.",
         file="src/workers.rs", edits=[
            ("""    let mut backoff = settings.backoff_first;
    loop {
        let (subscribed, why) = session(&shared).await;""", """    let mut backoff = settings.backoff_first;
    let mut first = true;
    loop {
        let (subscribed, why) = session(&shared, first).await;
        first &= !subscribed;"""),
            ("""async fn session(shared: &Shared) -> (bool, String) {""", """async fn session(shared: &Shared, first: bool) -> (bool, String) {"""),
            ("""    shared.heard();
    if let Err(why) = resync(shared).await {
        return (true, why);
    }""", """    shared.heard();
    if first {
        if let Err(why) = resync(shared).await {
            return (true, why);
        }
    } else {
        let mut state = shared.lock();
        state.connected = true;
    }""")]),
    dict(name="reconnect-without-resubscribe", invariant="never-deaf", budget=3000, scenario="broadcaster-disconnect",
         story="the worker sends SUB only on its first connection; a reconnect restores the connection (beats\n"
               "arrive, so it looks alive and healthy) but not the subscription, and no notification reaches it.",
         file="src/workers.rs", edits=[
            ("""    let mut backoff = settings.backoff_first;
    loop {
        let (subscribed, why) = session(&shared).await;""", """    let mut backoff = settings.backoff_first;
    let mut first = true;
    loop {
        let (subscribed, why) = session(&shared, first).await;
        first &= !subscribed;"""),
            ("""async fn session(shared: &Shared) -> (bool, String) {""", """async fn session(shared: &Shared, first: bool) -> (bool, String) {"""),
            ("""        let request = format!("SUB {TOPIC} {}\\n", shared.name);
        stream.get_mut().write_all(request.as_bytes()).await?;
        stream.get_mut().flush().await?;
        loop {""", """        if !first {
            return Ok(stream);
        }
        let request = format!("SUB {TOPIC} {}\\n", shared.name);
        stream.get_mut().write_all(request.as_bytes()).await?;
        stream.get_mut().flush().await?;
        loop {""")]),
    dict(name="apply-without-version-check", invariant="no-regression", budget=3000, scenario="broadcaster-disconnect",
         story="a notification overwrites the view without comparing versions, so a late or duplicate one\n"
               "(an announce after a resync, a publish retried) moves the view back to an older version.",
         file="src/workers.rs", edits=[
            ("""        let held = state.view.entry(dataset.to_owned()).or_insert(0);
        if version > *held {
            *held = version;
        }""", """        state.view.insert(dataset.to_owned(), version);""")]),
    dict(name="deaf-but-healthy", invariant="never-deaf", budget=3000, scenario="broadcaster-disconnect",
         story="on a lost subscription the worker logs it and carries on: it neither reconnects nor says it\n"
               "is disconnected, and serves a view that no longer moves while reporting healthy.",
         file="src/workers.rs", edits=[
            ("""        faultline_fp::note("engine.workers.lost", &why);
        {""", """        faultline_fp::note("engine.workers.lost", &why);
        if subscribed {
            return;
        }
        {""")]),
    dict(name="serves-before-resync", invariant="no-regression", budget=5000, scenario="broadcaster-disconnect",
         story="a worker reports itself serving as soon as its subscription is confirmed, before its resync\n"
               "has read the store: a restarted worker serves its empty view for the length of the resync.",
         file="src/workers.rs", edits=[
            ("""    shared.heard();
    if let Err(why) = resync(shared).await {""", """    shared.heard();
    {
        let mut state = shared.lock();
        state.serving = true;
        state.connected = true;
    }
    if let Err(why) = resync(shared).await {""")]),
    dict(name="resync-before-subscribe", invariant="no-lost-update", budget=20000, scenario="broadcaster-disconnect",
         story="the worker reads the store first and subscribes after: a change committed and published in\n"
               "between (one round trip to the broadcaster) is neither in the snapshot nor relayed to it.",
         file="src/workers.rs", edits=[
            ("""async fn session(shared: &Shared) -> (bool, String) {
    let settings = shared.settings;""", """async fn session(shared: &Shared) -> (bool, String) {
    let settings = shared.settings;
    let heads = match shared.engine.heads().await {
        Ok(heads) => heads,
        Err(error) => return (false, format!("resync: {error}")),
    };
    for (dataset, version) in &heads {
        shared.apply(dataset, *version);
    }"""),
            ("""    let heads = shared
        .engine
        .heads()
        .await
        .map_err(|e| format!("resync: {e}"))?;
    for (dataset, version) in &heads {
        shared.apply(dataset, *version);
    }
    fp!("engine.workers.resync.before_serve")""", """    let heads = shared.lock().view.clone();
    fp!("engine.workers.resync.before_serve")""")]),
    dict(name="announce-only-own-changes", invariant="converges", budget=5000, scenario="broadcaster-disconnect",
         story="after a resync the worker announces only its own failed publishes, not the heads it read, to\n"
               "save traffic: a change whose publisher crashed between its commit and its publish reaches no\n"
               "worker that stays connected.",
         file="src/workers.rs", edits=[
            ("""        let mut announced = heads.clone();""", """        let mut announced = BTreeMap::new();""")]),
    dict(name="single-statement-backfill", invariant="reader-wait-bounded", budget=2000, scenario="backfill",
         story="the backfill stamps every eligible row in one correlated UPDATE (no LIMIT): correct rows, but\n"
               "the one transaction holds the backfilling handle's connection for the whole table, and every\n"
               "reader on that handle waits for it (incident 002).",
         file="src/backfill.rs", edits=[
            ("""                       AND txid IN (SELECT key FROM json_each(?1)) ORDER BY seq LIMIT ?3)",
        params![published, last_row, batch],""", """                       AND txid IN (SELECT key FROM json_each(?1)))",
        params![published, last_row],""")]),
    dict(name="no-snapshot", invariant="progress-honest", budget=3000, scenario="backfill",
         story="each batch re-reads which rows are eligible (the current chain, no largest-row bound) instead of\n"
               "the attempt's snapshot, so the loop also stamps rows published after it counted: it chases the\n"
               "writers, and reports more rows processed than it counted.",
         file="src/backfill.rs", edits=[
            ("""            let updated = {
                let mut connection = sql::begin_write_shared(&table, "backfill.batch").await?;""", """            let published = self.versions(dataset).await?;
            let published = serde_json::Value::Object(
                published.iter().map(|l| (l.txid.clone(), l.version.into())).collect(),
            )
            .to_string();
            let last_row = i64::MAX;
            let updated = {
                let mut connection = sql::begin_write_shared(&table, "backfill.batch").await?;""")]),
    dict(name="orphans-not-skipped", invariant="backfill-terminates", budget=3000, scenario="backfill",
         story="the batch picks the next rows without a version, published or not; an orphan (a txid no version\n"
               "publishes) gets NULL again, so it is picked again forever and the loop never ends.",
         file="src/backfill.rs", edits=[
            ("""         WHERE seq IN (SELECT seq FROM items WHERE version IS NULL AND seq <= ?2
                       AND txid IN (SELECT key FROM json_each(?1)) ORDER BY seq LIMIT ?3)",""",
             """         WHERE seq IN (SELECT seq FROM items WHERE version IS NULL AND seq <= ?2
                       ORDER BY seq LIMIT ?3)",""")]),
    dict(name="batch-error-ends-loop", invariant="errors-propagate", budget=3000, scenario="backfill",
         story="a batch that fails is taken as the end of the table (the loop stops as if nothing were left),\n"
               "so the attempt is marked done with rows still to do.",
         file="src/backfill.rs", edits=[
            ("""                if result.is_err() {
                    sql::rollback_quietly(&connection);
                }
                result?
            };""", """                if result.is_err() {
                    sql::rollback_quietly(&connection);
                }
                result.unwrap_or(0)
            };""")]),
    dict(name="cancel-marks-done", invariant="cancel-is-partial", budget=3000, scenario="backfill",
         story="a canceled attempt is recorded as done (it stopped cleanly, after all), so the rows it never\n"
               "reached are never backfilled and nothing retries.",
         file="src/backfill.rs", edits=[
            ("            Ok(Ended::Canceled) => Status::Canceled,", "            Ok(Ended::Canceled) => Status::Done,")]),
    dict(name="progress-kept-on-retry", invariant="progress-honest", budget=3000, scenario="backfill",
         story="a retry claims the status row but keeps the counts of the attempt before it, until its own\n"
               "first progress write: observers see the old attempt's numbers under the new attempt.",
         file="src/background.rs", edits=[
            ("""             error = NULL, rows_processed = 0, rows_total = 0, updated_ms = ?4",""",
             """             error = NULL, updated_ms = ?4",""")]),
    dict(name="terminal-progress-skipped", invariant="progress-honest", budget=3000, scenario="backfill",
         story="the terminal write records the final status but not the final counts, so the row keeps the\n"
               "last rate-limited progress: a done backfill shows fewer rows processed than it did.",
         file="src/background.rs", edits=[
            ("""                "UPDATE background SET rows_processed = ?4, rows_total = ?5, updated_ms = ?6,
                     status = ?7, error = ?8""", """                "UPDATE background SET updated_ms = ?6, status = ?7, error = ?8""")]),

    dict(name="recovery-skips-stamp", invariant="done-means-done", budget=3000, scenario="backfill",
         story="recovery's roll-forward of a published write keeps its rows and removes its sidecar but does not\n"
               "stamp them: a writer that crashed between its publish and its stamp leaves rows after the\n"
               "backfill's snapshot with no version, and nobody else will ever give them one.",
         file="src/recovery.rs", edits=[
            ("""                engine
                    .stamp_rows(&sidecar.table, &sidecar.txid, link.version)
                    .await?;""", """                let _ = link;""")]),

    dict(name="named-checked-before-lock", invariant="delete-wins", budget=3000, scenario="delete-vs-fetch",
         strategy="pct",
         story="the fetch checks that a scope still names the source with its own statement before taking the\n"
               "write lock (a deleted source then costs no write transaction) and no longer checks inside it:\n"
               "a delete that commits between the check and BEGIN is undone. Two statements of one handle,\n"
               "back to back: only a preemption between them (pct) opens the window.",
         file="src/scopes.rs", edits=[
            ("""        let connection = guard.as_mut().expect("opened");
        sql::begin_write(connection, "scopes.fetch").await?;""", """        let connection = guard.as_mut().expect("opened");
        // Checked before taking the write lock: a deleted source costs no write transaction.
        let named: i64 = sql::retry_busy(connection, "scopes.fetch.named", |c| {
            c.query_row("SELECT COUNT(*) FROM scopes WHERE source = ?1", [source], |r| r.get(0))
        })
        .await?;
        if named == 0 {
            drop(guard);
            self.inner.scopes.purge(source);
            return Ok(Synced::Deleted);
        }
        sql::begin_write(connection, "scopes.fetch").await?;"""),
            ("""    if named == 0 {
        return Ok(false);
    }
    connection.run("DELETE FROM entries WHERE source = ?1", [source])?;""", """    let _ = named;
    connection.run("DELETE FROM entries WHERE source = ?1", [source])?;""")]),

    dict(name="abandon-removes-sidecar-first", invariant="store-clean", budget=3000, scenario="concurrent-writers",
         story="a writer that lost its race removes its sidecar before unstaging its rows (so that a failed\n"
               "unstage cannot leave the write looking pending): a crash or an error between the two leaves\n"
               "staged rows that no version publishes and no sidecar names. Reads never see them; only a\n"
               "check of the store itself does.",
         file="src/append.rs", edits=[
            ("""    async fn abandon(&self, dataset: &str, txid: &str) {
        let cleaned = match fp!("engine.abandon.before_unstage").await {
            Ok(()) => self.unstage(dataset, txid).await.map(drop),
            Err(injected) => Err(EngineError::from(injected)),
        };
        match cleaned.and_then(|()| sidecar::remove(self.dir(), txid)) {""", """    async fn abandon(&self, dataset: &str, txid: &str) {
        let removed = sidecar::remove(self.dir(), txid);
        let cleaned = match fp!("engine.abandon.before_unstage").await {
            Ok(()) => self.unstage(dataset, txid).await.map(drop),
            Err(injected) => Err(EngineError::from(injected)),
        };
        match removed.and(cleaned) {""")]),

    dict(name="quarantine-keeps-the-wrong-column", invariant="data-preserved", budget=3000, scenario="schema-apply",
         story="moving an undecodable record to the quarantine reads the record's json column, which a legacy\n"
               "record does not have, instead of its legacy bytes: the quarantine keeps the key and the\n"
               "reason and an empty value. A check of the quarantine by key alone passes.",
         file="src/records.rs", edits=[
            ("""        .row("SELECT legacy FROM records WHERE key = ?1", [key], |r| {""",
             """        .row("SELECT json FROM records WHERE key = ?1", [key], |r| {""")]),

    dict(name="string-length-in-chars", invariant="data-preserved", budget=3000, scenario="schema-apply",
         story="the legacy encoder writes a string's length as its number of characters instead of its bytes:\n"
               "every ASCII value round-trips, and a record holding non-ASCII text is written so that the\n"
               "decoder reads it short, and the re-encode migration quarantines or refuses a good record.\n"
               "Only values beyond ASCII reveal it.",
         file="src/legacy.rs", edits=[
            ("""            let len = u32::try_from(text.len()).map_err(|_| format!("field {name} too long"))?;""",
             """            let len = u32::try_from(text.chars().count())
                .map_err(|_| format!("field {name} too long"))?;""")]),

    dict(name="rollback-forgets-first", invariant="store-clean", budget=3000, scenario="concurrent-writers",
         story="recovery's roll-back of a write that never published removes the write's sidecar before it\n"
               "unstages the rows (so that an unstage that keeps failing is not retried at every open): a\n"
               "second crash, or an error, inside that recovery between the two leaves staged rows nobody\n"
               "names. Two faults in sequence: a crash that leaves an unpublished write, then one inside\n"
               "the recovery of it.",
         file="src/recovery.rs", edits=[
            ("""        None => {
            fp!("engine.recovery.before_unstage").await?;""", """        None => {
            sidecar::remove(engine.dir(), &sidecar.txid)?;
            fp!("engine.recovery.before_unstage").await?;""")]),

    dict(name="abandon-forgets-on-error", invariant="store-clean", budget=3000, scenario="concurrent-writers",
         story="a writer that lost its race removes its sidecar even when unstaging its rows failed (the\n"
               "write lost either way, so it is no longer pending): the staged rows stay, and no sidecar is\n"
               "left for recovery to find them by. Only an error on the error path reaches it; a crash there\n"
               "keeps the sidecar and recovery cleans up.",
         file="src/append.rs", edits=[
            ("""        match cleaned.and_then(|()| sidecar::remove(self.dir(), txid)) {
            Ok(()) => {}
            Err(error) => faultline_fp::note("engine.abandon_incomplete", &error),
        }""", """        if let Err(error) = &cleaned {
            faultline_fp::note("engine.abandon_incomplete", error);
        }
        if let Err(error) = sidecar::remove(self.dir(), txid) {
            faultline_fp::note("engine.abandon_incomplete", &error);
        }""")]),
    dict(name="leases-released-after-commit", invariant="leases-released", budget=3, scenario="schema-apply",
         strategy="crash-points",
         story="the catalog switch commits the new schema, then releases the migration's leases in a statement\n"
               "of its own (the schema is what matters; leases are bookkeeping). A crash between the two leaves\n"
               "the leases: the recovering handle claims them, sees the migration complete, removes its sidecar\n"
               "and keeps the leases, so writers to the table are refused for as long as it lives. The window is\n"
               "one statement wide and no failpoint of its own marks it: a crash at the migrator's statement\n"
               "boundary reaches it, or a store crash at another node's failpoint while the commit syncs.",
         file="src/migrate.rs", edits=[
            ("""        let written = (|| -> Result<()> {
            schema::write(&connection, &sidecar.new)?;
            connection.run("DELETE FROM leases WHERE migration = ?1", [&sidecar.id])?;
            Ok(())
        })();
        let result = match written {
            Ok(()) => fp!("engine.migrate.before_catalog_commit")
                .await
                .map_err(EngineError::from),
            Err(error) => Err(error),
        };
        finish_write(&mut connection, result).await""", """        let written = schema::write(&connection, &sidecar.new);
        let result = match written {
            Ok(()) => fp!("engine.migrate.before_catalog_commit")
                .await
                .map_err(EngineError::from),
            Err(error) => Err(error),
        };
        finish_write(&mut connection, result).await?;
        // The migration is complete once the catalog names the new schema; its leases are
        // bookkeeping, released after.
        sql::retry_busy(&mut connection, "migrate.release", |c| {
            c.run("DELETE FROM leases WHERE migration = ?1", [&sidecar.id])
        })
        .await?;
        Ok(())""")]),
    dict(name="payload-line-end-trimmed", invariant="payloads-intact", budget=3000, scenario="concurrent-writers",
         story="the page reader strips a trailing line break from each payload (payloads were once imported\n"
               "line by line, and a stray newline broke a client), so an item appended with a payload ending in\n"
               "a line break reads back shorter. Only an edge value, a payload that ends in one, shows it.",
         file="src/table.rs", edits=[
            ("""                    payload: r.get(2)?,""", """                    payload: r
                        .get::<_, String>(2)?
                        .trim_end_matches(['\\r', '\\n'])
                        .to_owned(),""")]),
    dict(name="lease-without-catalog-recheck", invariant="leases-released", budget=6000, scenario="schema-apply",
         strategy="pct:1",
         story="apply_schema reads the catalog, plans, then takes the leases without checking the catalog is\n"
               "still the one it planned against. If another handle finishes the same change in between, the\n"
               "new migration leases the tables, finds the catalog already at its version when it resumes,\n"
               "removes its sidecar and never releases the leases. Found by pct:1 in a plain sweep of the\n"
               "engine before anyone planted it: a two-statement window between handles.",
         file="src/migrate.rs", edits=[
            ("""        let mut result = match schema::read(&connection) {
            Ok(catalog) if catalog.version == planned_on => Ok(()),
            Ok(catalog) => Err(EngineError::SchemaChanged {
                expected: planned_on,
                current: catalog.version,
            }),
            Err(error) => Err(error.into()),
        };""", """        let _ = planned_on;
        let mut result = Ok(());""")]),
]

def main(names):
    chosen = [m for m in MUTANTS if not names or m["name"] in names]
    for mutant in chosen:
        path = mutant["file"]
        original = open(path).read()
        text = original
        try:
            for old, new in mutant["edits"]:
                if text.count(old) != 1:
                    sys.exit(f"{mutant['name']}: edit no longer matches exactly once in {path}:\n{old}")
                text = text.replace(old, new)
            open(path, "w").write(text)
            diff = subprocess.run(["git", "diff", "--", path], capture_output=True, text=True, check=True).stdout
        finally:
            open(path, "w").write(original)
        header = (f"Mutant: {mutant['name']}\nInvariant: {mutant['invariant']}\nBudget: {mutant['budget']}\n"
                  f"Scenario: {mutant['scenario']}\n"
                  + (f"Strategy: {mutant['strategy']}\n" if mutant.get("strategy") else "")
                  + f"Story: {mutant['story']}\n\n")
        open(f"fixtures/mutants/{mutant['name']}.patch", "w").write(header + diff)
        print(f"{mutant['name']}: {sum(1 for l in diff.splitlines() if l[:1] in '+-' and l[:3] not in ('+++', '---'))} changed lines")

if __name__ == "__main__":
    main(sys.argv[1:])
