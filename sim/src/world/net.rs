//! The network faults of a running world: drawn at the start of the run (see
//! [`crate::net`]), each started and ended by a task on the supervisor node, applied through
//! madsim's `NetSim`, and all ended when the world heals. Clogs are counted per link and per
//! host direction, so two overlapping faults on one link end cleanly.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use madsim::net::NetSim;

use super::{State, World};
use crate::net::{NetFault, NetKind, NetModel};
use crate::trace::Event;

/// A clog madsim applies: a link (from, to) or a host's incoming or outgoing traffic, by
/// index into the world's nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Clog {
    Link(usize, usize),
    In(usize),
    Out(usize),
}

/// A fault in effect: its clogs, or the latency it added.
#[derive(Debug, Clone)]
struct Active {
    slot: u32,
    clogs: Vec<Clog>,
    extra: Duration,
    what: String,
}

/// The network state of a run.
#[derive(Debug, Default)]
pub(super) struct Network {
    clogs: BTreeMap<Clog, u32>,
    active: Vec<Active>,
    base_latency: Option<Range<Duration>>,
}

impl World {
    /// Draws every network fault slot (in order, at the start) and schedules each fault.
    pub(super) fn start_network_faults(&self) {
        let model = self.shared.net_model.clone();
        if model.faults == 0 {
            return;
        }
        let (faults, supervisor) = {
            let mut state = self.state();
            let model = NetModel {
                weights: state.strategy.net_weights(model.weights),
                ..model
            };
            let faults: Vec<NetFault> = (0..model.faults)
                .filter_map(|slot| NetFault::draw(&model, slot, &mut state.chooser))
                .collect();
            (faults, state.supervisor.clone().expect("started"))
        };
        for fault in faults {
            let world = self.clone();
            supervisor.spawn(async move {
                madsim::time::sleep(fault.start).await;
                if world.begin(&fault) {
                    madsim::time::sleep(fault.duration).await;
                    world.end(fault.slot);
                }
            });
        }
    }

    /// Ends every network fault in effect (the world heals).
    pub(super) fn heal_network(&self) {
        let slots: Vec<u32> = self.state().network.active.iter().map(|a| a.slot).collect();
        for slot in slots {
            self.end(slot);
        }
    }

    /// Starts `fault` on the hosts present now; whether it started.
    fn begin(&self, fault: &NetFault) -> bool {
        let mut state = self.state();
        let hosts: Vec<usize> = (0..state.nodes.len())
            .filter(|i| state.nodes[*i].ip.is_some())
            .collect();
        let resolved = fault.hosts(hosts.len());
        let (Some((from, to)), false) = (resolved, state.healed) else {
            return false;
        };
        let (from, to) = (hosts[from], to.map(|t| hosts[t]));
        let name = |i: usize| state.nodes[i].name.clone();
        let (clogs, what) = match (fault.kind, to) {
            (NetKind::Partition, Some(to)) => (
                vec![Clog::Link(from, to), Clog::Link(to, from)],
                format!("partition {} <-> {}", name(from), name(to)),
            ),
            (NetKind::OneWay, Some(to)) => (
                vec![Clog::Link(from, to)],
                format!("one-way {} -> {} held", name(from), name(to)),
            ),
            (NetKind::Isolate, _) => (
                vec![Clog::In(from), Clog::Out(from)],
                format!("isolate {}", name(from)),
            ),
            (NetKind::Mute, _) => (vec![Clog::Out(from)], format!("mute {}", name(from))),
            (NetKind::Latency, _) => (
                Vec::new(),
                format!("latency +{}ms on every link", fault.extra.as_millis()),
            ),
            _ => return false,
        };
        for clog in &clogs {
            clog_more(&mut state, *clog);
        }
        let extra = match fault.kind {
            NetKind::Latency => fault.extra,
            _ => Duration::ZERO,
        };
        state.network.active.push(Active {
            slot: fault.slot,
            clogs,
            extra,
            what: what.clone(),
        });
        set_latency(&mut state);
        state.coverage.fault(fault.kind.name());
        let detail = format!(
            "{what} for {}ms (net/{})",
            fault.duration.as_millis(),
            fault.slot
        );
        self.push_supervisor_event(&mut state, detail);
        true
    }

    /// Ends the fault of `slot`, if it is still in effect.
    fn end(&self, slot: u32) {
        let mut state = self.state();
        let Some(index) = state.network.active.iter().position(|a| a.slot == slot) else {
            return;
        };
        let active = state.network.active.remove(index);
        for clog in &active.clogs {
            clog_less(&mut state, *clog);
        }
        set_latency(&mut state);
        let detail = format!("ended {} (net/{slot})", active.what);
        self.push_supervisor_event(&mut state, detail);
    }

    fn push_supervisor_event(&self, state: &mut State, detail: String) {
        let time_ns = state.start.map_or(0, |s| s.elapsed().as_nanos() as u64);
        state.push(Event {
            time_ns,
            node: "supervisor".to_owned(),
            kind: "net".to_owned(),
            detail,
        });
    }
}

fn clog_more(state: &mut State, clog: Clog) {
    let count = state.network.clogs.entry(clog).or_insert(0);
    *count += 1;
    if *count == 1 {
        apply(state, clog, true);
    }
}

fn clog_less(state: &mut State, clog: Clog) {
    let Some(count) = state.network.clogs.get_mut(&clog) else {
        return;
    };
    *count -= 1;
    if *count == 0 {
        state.network.clogs.remove(&clog);
        apply(state, clog, false);
    }
}

fn apply(state: &State, clog: Clog, on: bool) {
    let net = NetSim::current();
    let id = |i: usize| state.nodes[i].id;
    match (clog, on) {
        (Clog::Link(a, b), true) => net.clog_link(id(a), id(b)),
        (Clog::Link(a, b), false) => net.unclog_link(id(a), id(b)),
        (Clog::In(a), true) => net.clog_node_in(id(a)),
        (Clog::In(a), false) => net.unclog_node_in(id(a)),
        (Clog::Out(a), true) => net.clog_node_out(id(a)),
        (Clog::Out(a), false) => net.unclog_node_out(id(a)),
    }
}

/// Sets every link's latency to madsim's own range plus the largest latency fault in effect.
fn set_latency(state: &mut State) {
    let extra = state.network.active.iter().map(|a| a.extra).max();
    let extra = extra.unwrap_or(Duration::ZERO);
    if extra.is_zero() && state.network.base_latency.is_none() {
        return;
    }
    let base = &mut state.network.base_latency;
    NetSim::current().update_config(|config| {
        let base = base.get_or_insert_with(|| config.send_latency.clone());
        config.send_latency = base.start + extra..base.end + extra;
    });
}
