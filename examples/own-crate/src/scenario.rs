//! `inventory`: two or three shop nodes, each a process of the service with its own
//! connection on one store, place their orders against one or two items while failpoint
//! hits are yields, sleeps, injected errors and crashes (of a node, of the whole store, of
//! the power). A shop retries an order that failed until it is placed (orders are
//! idempotent by id), and a restarted shop goes on from its first order. After the fault
//! phase everything heals and every shop must finish within a bound; then the checks read
//! the store.
//!
//! Tape sites (every value shrinks towards 0: fewer shops, items, orders, smaller ones):
//! `setup/shops` (0..=1, +2 shops), `setup/items` (0..=1, +1 item), `setup/stock/<item>`
//! (0..=6, +4), `order/<shop>/<slot>/kind` (0 skip, 1 order), `order/<shop>/<slot>/item`,
//! `order/<shop>/<slot>/quantity` (0..=2, +1).

use faultline_sim::faults::FaultModel;
use faultline_sim::{InvariantDoc, NodeGroup, Scenario, SometimesDoc};

/// The inventory scenario.
pub struct InventoryScenario;

/// Order slots per shop.
pub const SLOTS: usize = 4;
/// The items a run may stock.
pub const ITEMS: [&str; 2] = ["apples", "pears"];

const INVARIANTS: &[InvariantDoc] = &[
    InvariantDoc {
        name: "stock-balances",
        checks: "per item, the stock left plus the quantities of the placed orders is the \
                 stock at the start (no deduction lost or doubled); does not check which \
                 orders were refused",
    },
    InvariantDoc {
        name: "no-oversell",
        checks: "per item, the placed orders' quantities add up to at most the stock at the \
                 start; does not check the stock left",
    },
    InvariantDoc {
        name: "liveness:orders-finish",
        checks: "after healing, every shop has placed or been refused every order within \
                 the liveness bound",
    },
];

const SOMETIMES: &[SometimesDoc] = &[
    SometimesDoc {
        name: "busy-retried",
        means: "a shop waited for another shop's write lock",
    },
    SometimesDoc {
        name: "out-of-stock",
        means: "an order was refused for want of stock",
    },
];

/// The name of shop `index`'s node (its failpoint sites carry it).
pub fn shop_name(index: usize) -> String {
    format!("shop-{index}")
}

impl Scenario for InventoryScenario {
    fn name(&self) -> &'static str {
        "inventory"
    }

    fn summary(&self) -> &'static str {
        "2-3 shops reserve stock in one SQLite store through crashes, errors and delays"
    }

    fn invariants(&self) -> &'static [InvariantDoc] {
        INVARIANTS
    }

    fn fault_model(&self) -> FaultModel {
        let mut model = FaultModel::default();
        model.crash_scope_weights = [1, 1, 1];
        model
    }

    fn node_groups(&self) -> &'static [NodeGroup] {
        &[NodeGroup {
            count_site: "setup/shops",
            min: 2,
            site_prefix: |shop| format!("order/{shop}/"),
            node_name: shop_name,
            slots: SLOTS,
        }]
    }

    fn sometimes(&self) -> &'static [SometimesDoc] {
        SOMETIMES
    }

    fn failpoints(&self) -> &'static [&'static str] {
        &["inventory."]
    }

    #[cfg(madsim)]
    fn run(
        &self,
        world: faultline_sim::world::World,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()>>> {
        Box::pin(simulated::run(world))
    }
}

#[cfg(madsim)]
mod simulated {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use faultline_sim::iotime::uncharged;
    use faultline_sim::phases::{self, Backoff};
    use faultline_sim::world::World;

    use super::{shop_name, ITEMS, SLOTS};
    use crate::service::{self, Inventory, Order, Reserved};

    /// What the run does, drawn before anything starts: a restarted shop replays its
    /// orders without drawing again (a tape site is drawn once).
    struct Plan {
        stock: Vec<(String, i64)>,
        shops: Vec<Vec<Order>>,
    }

    struct Shared {
        world: World,
        plan: Plan,
        done: Mutex<Vec<bool>>,
    }

    pub async fn run(world: World) {
        faultline_sim::sqlite::seed_prng(world.seed());
        let plan = draw(&world);
        world.event("plan", describe(&plan));
        let store = world.store_dir();
        if let Err(error) = uncharged(|| Inventory::create(&store, &plan.stock)) {
            panic!("setup runs without faults: {error}");
        }
        let shared = Arc::new(Shared {
            done: Mutex::new(vec![false; plan.shops.len()]),
            world: world.clone(),
            plan,
        });
        for shop in 0..shared.plan.shops.len() {
            let node = shared.clone();
            world.add_node(&shop_name(shop), move || run_shop(node.clone(), shop));
        }
        let all_done = || shared.done.lock().unwrap().iter().all(|d| *d);
        if !phases::faults_then_heal(&world, all_done).await {
            let bound = phases::LIVENESS_BOUND;
            world.fail_liveness(
                "orders-finish",
                format!("shops not done {bound:?} after healing"),
            );
            return;
        }
        check(&world);
    }

    fn draw(world: &World) -> Plan {
        let items = 1 + world.draw("setup/items", 1) as usize;
        let stock = ITEMS[..items]
            .iter()
            .map(|item| {
                (
                    item.to_string(),
                    4 + world.draw(format!("setup/stock/{item}"), 6) as i64,
                )
            })
            .collect();
        let shops = (0..2 + world.draw("setup/shops", 1) as usize)
            .map(|shop| draw_orders(world, shop, items))
            .collect();
        Plan { stock, shops }
    }

    fn draw_orders(world: &World, shop: usize, items: usize) -> Vec<Order> {
        let mut orders = Vec::new();
        for slot in 0..SLOTS {
            let site = format!("order/{shop}/{slot}");
            if world.draw(format!("{site}/kind"), 1) == 0 {
                continue;
            }
            let item = world.draw(format!("{site}/item"), items as u64 - 1) as usize;
            let quantity = 1 + world.draw(format!("{site}/quantity"), 2) as i64;
            orders.push(Order {
                id: format!("{}/{slot}", shop_name(shop)),
                item: ITEMS[item].to_owned(),
                quantity,
            });
        }
        orders
    }

    fn describe(plan: &Plan) -> String {
        let stock: Vec<String> = plan.stock.iter().map(|(i, c)| format!("{i} {c}")).collect();
        let orders: Vec<String> = plan.shops.iter().map(|o| o.len().to_string()).collect();
        format!(
            "stock [{}], shops with orders [{}]",
            stock.join(", "),
            orders.join(",")
        )
    }

    /// One shop: open a handle, then place every order, retrying each failure after a
    /// backoff. Runs again from its first order after a crash.
    async fn run_shop(shared: Arc<Shared>, shop: usize) {
        let world = &shared.world;
        let mut inventory = open(world).await;
        world.node_ready();
        for order in &shared.plan.shops[shop] {
            let reserved = place(world, &mut inventory, order).await;
            world.sometimes(
                "out-of-stock",
                matches!(reserved, Reserved::OutOfStock { .. }),
            );
        }
        world.sometimes("busy-retried", inventory.busy_retries() > 0);
        shared.done.lock().unwrap()[shop] = true;
    }

    async fn open(world: &World) -> Inventory {
        let mut backoff = Backoff::new(Duration::from_millis(2));
        loop {
            match Inventory::open(&world.store_dir()).await {
                Ok(inventory) => return inventory,
                Err(error) => world.event("open.error", error),
            }
            backoff.pause().await;
        }
    }

    async fn place(world: &World, inventory: &mut Inventory, order: &Order) -> Reserved {
        let mut backoff = Backoff::new(Duration::from_millis(2));
        loop {
            match inventory.reserve(order).await {
                Ok(reserved) => {
                    let what = format!(
                        "{} {} x{}: {reserved}",
                        order.id, order.item, order.quantity
                    );
                    world.event("reserve", what);
                    return reserved;
                }
                Err(error) => world.event("reserve.error", format!("{}: {error}", order.id)),
            }
            backoff.pause().await;
        }
    }

    /// The checks, on a fresh handle on the store as it is now (after a store crash, the
    /// image every node restarted on). The harness's own reads cost no simulated time.
    fn check(world: &World) {
        let store = world.store_dir();
        let read = uncharged(|| -> Result<_, service::Error> {
            let inventory = Inventory::inspect(&store)?;
            Ok((
                service::catalog(&store)?,
                inventory.stock()?,
                inventory.orders()?,
            ))
        });
        let (started, left, orders) = match read {
            Ok(read) => read,
            Err(error) => {
                let message = format!("cannot read the store: {error}");
                return world.fail("stock-balances", message);
            }
        };
        world.event("stock", format!("{left:?}"));
        for (item, at_start) in &started {
            let sold: i64 = orders
                .iter()
                .filter(|(i, _)| i == item)
                .map(|(_, q)| q)
                .sum();
            let now = left.iter().find(|(i, _)| i == item).map_or(0, |(_, c)| *c);
            if sold > *at_start {
                let message = format!("{item}: {sold} sold of {at_start} in stock");
                return world.fail("no-oversell", message);
            }
            if now + sold != *at_start {
                let message =
                    format!("{item}: {now} left + {sold} sold != {at_start} at the start");
                return world.fail("stock-balances", message);
            }
        }
    }
}
