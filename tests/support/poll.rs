//! Reading the store the way a test must: poll with a deadline (never a
//! fixed sleep), wait for the agent to catch up, and small accessors for
//! one node's tables.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use locus_schema::{CallRecord, EslLink, FarmView, NodeId, NodeView, Store, Table};
use locus_sim::SimHandle;

use super::{DOMAIN, POLL, WAIT};

/// Polls `read_farm` every 20 ms until `ok` holds; panics after [`WAIT`]
/// with the last view (or error) in the message.
pub async fn wait_for(
    store: &Arc<dyn Store>,
    what: &str,
    ok: impl Fn(&FarmView) -> bool,
) -> FarmView {
    wait_for_within(store, what, WAIT, ok).await
}

/// [`wait_for`] with its own bound.
pub async fn wait_for_within(
    store: &Arc<dyn Store>,
    what: &str,
    limit: Duration,
    ok: impl Fn(&FarmView) -> bool,
) -> FarmView {
    let deadline = Instant::now() + limit;
    let mut last: String;
    loop {
        match store.read_farm().await {
            Ok(farm) if ok(&farm) => return farm,
            Ok(farm) => last = format!("{farm:#?}"),
            Err(e) => last = format!("read error: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}; last view: {last}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls a plain condition every 20 ms until it holds (panics after `limit`).
pub async fn wait_until(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The node's view, live or not.
pub fn node<'a>(farm: &'a FarmView, id: &NodeId) -> Option<&'a NodeView> {
    farm.nodes.get(id)
}

/// True when the node is live and publishes `esl = up`.
pub fn esl_up(farm: &FarmView, id: &NodeId) -> bool {
    node(farm, id).is_some_and(|n| n.live && n.image.status.esl == EslLink::Up)
}

/// One table of one node (empty when absent).
pub fn table(farm: &FarmView, id: &NodeId, t: Table) -> BTreeMap<String, String> {
    node(farm, id)
        .and_then(|n| n.image.tables.get(&t).cloned())
        .unwrap_or_default()
}

/// The node's call records, parsed.
pub fn calls(farm: &FarmView, id: &NodeId) -> BTreeMap<String, CallRecord> {
    table(farm, id, Table::Calls)
        .into_iter()
        .map(|(k, v)| {
            let rec: CallRecord = serde_json::from_str(&v).expect("CallRecord JSON");
            (k, rec)
        })
        .collect()
}

/// `{DOMAIN}/{name}`: the field of ringing, groups, rooms and queues.
pub fn dkey(name: &str) -> String {
    format!("{DOMAIN}/{name}")
}

/// The `members` key of `ext` in [`DOMAIN`].
pub fn member(ext: &str) -> (String, String) {
    (DOMAIN.to_owned(), ext.to_owned())
}

/// Waits until the agent has published everything the box did so far: the
/// box reports a new idle-CPU figure in a HEARTBEAT, and since the agent
/// applies events in order, once Redis shows it every earlier event is
/// there too. Returns that view.
pub async fn settle(store: &Arc<dyn Store>, sim: &SimHandle, id: &NodeId) -> FarmView {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 160;
    let cpu = 50.0 + f64::from(n) * 0.25;
    sim.set_load(locus_sim::Load {
        idle_cpu: cpu,
        ..locus_sim::Load::default()
    });
    sim.heartbeat().await;
    wait_for(store, "the agent caught up (heartbeat)", |f| {
        node(f, id).is_some_and(|n| (n.image.status.idle_cpu - cpu).abs() < 0.001)
    })
    .await
}
