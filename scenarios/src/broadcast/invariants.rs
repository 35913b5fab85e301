//! The broadcaster-disconnect invariants: pure functions over the [`History`] a run
//! recorded, each saying what it checks and what it does not, each made to fail by a unit
//! test below. Times are simulated nanoseconds since the run's nodes started.

use std::collections::BTreeMap;

use faultline_sim::InvariantDoc;

/// Every invariant of the family, as `cargo sim list` shows them.
pub const DOCS: &[InvariantDoc] = &[
    InvariantDoc { name: "open-succeeds", checks: "every handle opens the store, after any crash; does not check what it then reads" },
    InvariantDoc { name: "no-regression", checks: "no worker ever serves an older version of a dataset than it served before, across its restarts; does not check it is recent" },
    InvariantDoc { name: "no-lost-update", checks: "a worker connected on a subscription that began at s holds, from s + 1 s, every change committed by s and every change relayed 1 s ago; does not check workers not connected" },
    InvariantDoc { name: "never-deaf", checks: "a worker reporting healthy was subscribed at the broadcaster within the last 1 s; does not check what it holds" },
    InvariantDoc { name: "bounded-staleness", checks: "a worker reporting healthy serves every change the broadcaster relayed 1 s or more ago; does not check changes never relayed" },
    InvariantDoc { name: "liveness:converges", checks: "within 5 s of healing every worker is healthy and its view equals the store's heads" },
    crate::store_clean::DOC,
];

/// A change a worker committed (recorded when its append returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// When.
    pub at: u64,
    /// The dataset.
    pub dataset: String,
    /// The version it published.
    pub version: u64,
}

/// A notification the broadcaster relayed to its subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relay {
    /// When.
    pub at: u64,
    /// The dataset.
    pub dataset: String,
    /// The version.
    pub version: u64,
}

/// One subscription as the broadcaster saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The worker's index.
    pub worker: usize,
    /// When it was registered.
    pub from: u64,
    /// When it ended (its connection closed, or the broadcaster restarted), if it did.
    pub to: Option<u64>,
}

/// What a probe read from a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// When.
    pub at: u64,
    /// The worker's index.
    pub worker: usize,
    /// Whether it said it was connected.
    pub connected: bool,
    /// Whether it said it was healthy (serving and connected).
    pub healthy: bool,
    /// What it served, or `None` when it served nothing.
    pub view: Option<BTreeMap<String, u64>>,
}

/// Everything a run recorded, in order of time within each list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Changes committed.
    pub commits: Vec<Commit>,
    /// Notifications relayed.
    pub relays: Vec<Relay>,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Probes' reads.
    pub observations: Vec<Observation>,
}

impl History {
    /// Records that `worker` subscribed at `at`.
    pub fn subscribed(&mut self, worker: usize, at: u64) {
        self.subscriptions.push(Subscription {
            worker,
            from: at,
            to: None,
        });
    }

    /// Records that `worker`'s oldest open subscription ended at `at`.
    pub fn unsubscribed(&mut self, worker: usize, at: u64) {
        let open = self
            .subscriptions
            .iter_mut()
            .find(|s| s.worker == worker && s.to.is_none());
        if let Some(subscription) = open {
            subscription.to = Some(at);
        }
    }

    /// Records that the broadcaster (re)started at `at`: every subscription had ended.
    pub fn broadcaster_started(&mut self, at: u64) {
        for subscription in self.subscriptions.iter_mut().filter(|s| s.to.is_none()) {
            subscription.to = Some(at);
        }
    }

    /// The subscription of `worker` open at `at` that began last.
    fn subscription_at(&self, worker: usize, at: u64) -> Option<&Subscription> {
        self.subscriptions
            .iter()
            .filter(|s| s.worker == worker && s.from <= at && s.to.is_none_or(|to| to >= at))
            .max_by_key(|s| s.from)
    }
}

fn served(view: &BTreeMap<String, u64>, dataset: &str) -> u64 {
    view.get(dataset).copied().unwrap_or(0)
}

fn ms(ns: u64) -> String {
    format!("{:.1}ms", ns as f64 / 1e6)
}

/// no-regression: per worker and dataset, every version served is at least the last one
/// served (a dataset not in a view counts as version 0).
pub fn no_regression(history: &History) -> Result<(), String> {
    let mut last: BTreeMap<(usize, &str), u64> = BTreeMap::new();
    for observation in &history.observations {
        let Some(view) = &observation.view else {
            continue;
        };
        for ((worker, dataset), before) in last.iter_mut() {
            if *worker != observation.worker {
                continue;
            }
            let now = served(view, dataset);
            if now < *before {
                return Err(format!(
                    "worker-{worker} served {dataset} at version {now} at {} after serving version {before}",
                    ms(observation.at)
                ));
            }
        }
        for (dataset, version) in view {
            let entry = last
                .entry((observation.worker, dataset.as_str()))
                .or_insert(0);
            *entry = (*entry).max(*version);
        }
    }
    Ok(())
}

/// The first dataset of `required` that `view` holds an older version of.
fn missing(
    required: &BTreeMap<&str, u64>,
    view: &BTreeMap<String, u64>,
) -> Option<(String, u64, u64)> {
    required
        .iter()
        .find(|(dataset, version)| served(view, dataset) < **version)
        .map(|(dataset, version)| (dataset.to_string(), *version, served(view, dataset)))
}

fn raise<'a>(required: &mut BTreeMap<&'a str, u64>, dataset: &'a str, version: u64) {
    let entry = required.entry(dataset).or_insert(0);
    *entry = (*entry).max(version);
}

/// no-lost-update: a worker that says it is connected at `t`, on the subscription that began
/// last at `s` (still open at `t`), holds, once `t >= s + bound`, every version committed by
/// `s` and every version relayed by `t - bound`.
pub fn no_lost_update(history: &History, bound: u64) -> Result<(), String> {
    for observation in &history.observations {
        let (Some(view), true) = (&observation.view, observation.connected) else {
            continue;
        };
        let t = observation.at;
        let Some(subscription) = history.subscription_at(observation.worker, t) else {
            continue;
        };
        if t < subscription.from + bound {
            continue;
        }
        let mut required = BTreeMap::new();
        for commit in history.commits.iter().filter(|c| c.at <= subscription.from) {
            raise(&mut required, &commit.dataset, commit.version);
        }
        for relay in history.relays.iter().filter(|r| r.at + bound <= t) {
            raise(&mut required, &relay.dataset, relay.version);
        }
        if let Some((dataset, version, held)) = missing(&required, view) {
            return Err(format!(
                "worker-{} connected since {} still held {dataset} at version {held} at {}; version {version} was committed or relayed over {} earlier",
                observation.worker,
                ms(subscription.from),
                ms(t),
                ms(bound)
            ));
        }
    }
    Ok(())
}

/// never-deaf: every healthy report comes from a worker the broadcaster had subscribed at
/// some moment in the last `bound`.
pub fn never_deaf(history: &History, bound: u64) -> Result<(), String> {
    for observation in history.observations.iter().filter(|o| o.healthy) {
        let t = observation.at;
        let since = t.saturating_sub(bound);
        let heard = history.subscriptions.iter().any(|s| {
            s.worker == observation.worker && s.from <= t && s.to.is_none_or(|to| to >= since)
        });
        if !heard {
            return Err(format!(
                "worker-{} reported healthy at {} but had not been subscribed at the broadcaster for {}",
                observation.worker,
                ms(t),
                ms(bound)
            ));
        }
    }
    Ok(())
}

/// bounded-staleness: every healthy report serves every version relayed `bound` or more
/// before it.
pub fn bounded_staleness(history: &History, bound: u64) -> Result<(), String> {
    for observation in history.observations.iter().filter(|o| o.healthy) {
        let Some(view) = &observation.view else {
            continue;
        };
        let mut required = BTreeMap::new();
        for relay in history
            .relays
            .iter()
            .filter(|r| r.at + bound <= observation.at)
        {
            raise(&mut required, &relay.dataset, relay.version);
        }
        if let Some((dataset, version, held)) = missing(&required, view) {
            return Err(format!(
                "worker-{} reported healthy at {} serving {dataset} at version {held}; version {version} was relayed over {} earlier",
                observation.worker,
                ms(observation.at),
                ms(bound)
            ));
        }
    }
    Ok(())
}

/// converges: the view equals the store's heads (datasets at version 0 may be absent).
pub fn converged(
    view: &BTreeMap<String, u64>,
    heads: &BTreeMap<String, u64>,
) -> Result<(), String> {
    let names = view.keys().chain(heads.keys());
    match names
        .into_iter()
        .find(|d| served(view, d) != served(heads, d))
    {
        Some(dataset) => Err(format!(
            "{dataset} is at version {} in the store but {} in the view",
            served(heads, dataset),
            served(view, dataset)
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const BOUND: u64 = 1_000 * MS;

    fn view(pairs: &[(&str, u64)]) -> Option<BTreeMap<String, u64>> {
        Some(pairs.iter().map(|(d, v)| (d.to_string(), *v)).collect())
    }

    fn seen(at: u64, worker: usize, healthy: bool, pairs: &[(&str, u64)]) -> Observation {
        Observation {
            at: at * MS,
            worker,
            connected: healthy,
            healthy,
            view: view(pairs),
        }
    }

    fn relay(at: u64, dataset: &str, version: u64) -> Relay {
        Relay {
            at: at * MS,
            dataset: dataset.into(),
            version,
        }
    }

    #[test]
    fn no_regression_fails_when_a_version_goes_back_even_to_absent() {
        let mut history = History {
            observations: vec![seen(1, 0, true, &[("a", 2)]), seen(2, 1, true, &[])],
            ..History::default()
        };
        assert!(no_regression(&history).is_ok());
        history.observations.push(seen(3, 0, true, &[("a", 1)]));
        assert!(no_regression(&history).unwrap_err().contains("version 1"));
        history.observations[2] = seen(3, 0, true, &[]);
        assert!(no_regression(&history).is_err());
    }

    #[test]
    fn no_lost_update_fails_on_a_commit_before_the_subscription_missing_after_the_bound() {
        let mut history = History::default();
        history.commits.push(Commit {
            at: 5 * MS,
            dataset: "a".into(),
            version: 3,
        });
        history.subscribed(0, 10 * MS);
        history.observations = vec![seen(500, 0, true, &[])];
        assert!(no_lost_update(&history, BOUND).is_ok(), "within the bound");
        history.observations.push(seen(1_100, 0, true, &[("a", 3)]));
        assert!(no_lost_update(&history, BOUND).is_ok());
        history.observations.push(seen(1_200, 0, true, &[("a", 2)]));
        assert!(no_lost_update(&history, BOUND).is_err());
    }

    #[test]
    fn no_lost_update_fails_on_a_relay_missed_while_subscribed() {
        let mut history = History::default();
        history.subscribed(0, 0);
        history.relays.push(relay(100, "a", 1));
        history.observations = vec![seen(1_050, 0, true, &[])];
        assert!(no_lost_update(&history, BOUND).is_ok());
        history.observations.push(seen(1_150, 0, true, &[]));
        assert!(no_lost_update(&history, BOUND).is_err());
        history.unsubscribed(0, 1_120 * MS);
        assert!(
            no_lost_update(&history, BOUND).is_ok(),
            "no longer subscribed"
        );
    }

    #[test]
    fn never_deaf_fails_on_a_healthy_report_long_after_the_subscription_ended() {
        let mut history = History::default();
        history.subscribed(0, 0);
        history.broadcaster_started(100 * MS);
        history.observations = vec![seen(1_000, 0, true, &[]), seen(1_200, 0, false, &[])];
        assert!(never_deaf(&history, BOUND).is_ok());
        history.observations.push(seen(1_200, 0, true, &[]));
        assert!(never_deaf(&history, BOUND)
            .unwrap_err()
            .contains("worker-0"));
        history.observations = vec![seen(50, 1, true, &[])];
        assert!(never_deaf(&history, BOUND).is_err(), "never subscribed");
    }

    #[test]
    fn bounded_staleness_fails_on_a_healthy_worker_missing_an_old_relay() {
        let mut history = History::default();
        history.relays.push(relay(0, "a", 2));
        history.observations = vec![seen(900, 0, true, &[]), seen(1_100, 0, false, &[])];
        assert!(bounded_staleness(&history, BOUND).is_ok());
        history.observations.push(seen(1_100, 0, true, &[("a", 1)]));
        assert!(bounded_staleness(&history, BOUND).is_err());
    }

    #[test]
    fn converged_fails_on_any_difference_but_not_on_an_absent_version_0() {
        let heads = view(&[("a", 2), ("b", 0)]).unwrap();
        assert!(converged(&view(&[("a", 2)]).unwrap(), &heads).is_ok());
        assert!(converged(&view(&[("a", 1)]).unwrap(), &heads).is_err());
        assert!(converged(&view(&[("a", 2), ("c", 1)]).unwrap(), &heads).is_err());
    }
}
