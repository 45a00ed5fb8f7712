//! The publisher: the only writer of this node's keys. It receives changes
//! from the model task, merges whatever is queued into one atomic write
//! (each event stays whole, so no reader sees half a call), keeps a mirror
//! of everything published, refreshes the lease, and after any failed write
//! or a store that lost our keys, republishes the mirror whole. When a
//! write is acknowledged it records how old each event in it was
//! (`locus_agent_publish_latency_seconds`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use locus_schema::{
    FarmAdmin, HashOp, MemberEntry, NodeChange, NodeId, NodeImage, NodeStore, RegClaim, Table,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::model::MemberOp;
use crate::{now_ms, now_us};

/// What the model task sends.
#[derive(Debug)]
pub enum Publish {
    /// Incremental change from one event.
    Change {
        /// The writes.
        change: NodeChange,
        /// When the event was created (`Event-Date-Timestamp`, us since
        /// the epoch); `None` for changes no event caused.
        origin_us: Option<u64>,
    },
    /// Full content after a resync: replaces everything.
    Replace(NodeImage),
    /// A membership claim changed.
    Member(MemberOp),
    /// Every registration the box holds (a resync): claims keep only these
    /// registrations (and gain the missing ones); a claim left without
    /// one (ended while the agent was not looking, or learnt from a call
    /// only) goes.
    Registrations(Vec<(String, String, RegClaim)>),
}

/// Most queued messages merged into one write.
const MAX_BATCH: usize = 1024;
/// Retry interval while the store is down: short, so a returning Redis is
/// made whole again well within a second.
const RETRY: Duration = Duration::from_millis(200);
/// Most event origins kept for the latency metric while the store is down;
/// past that, further events of the outage go unmeasured (they are still
/// published).
const MAX_PENDING_ORIGINS: usize = 65_536;

/// Publisher settings.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// This node.
    pub node: NodeId,
    /// Lease time-to-live.
    pub lease: Duration,
    /// Lease refresh interval.
    pub refresh: Duration,
    /// Janitor grace.
    pub reap_after: Duration,
}

/// Runs the publisher until cancelled or every sender is gone. It writes
/// this node to `store` and, every tenth lease refresh, reaps expired nodes
/// through `janitor` (usually the same store).
pub async fn run(
    cfg: PublisherConfig,
    store: Arc<dyn NodeStore>,
    janitor: Arc<dyn FarmAdmin>,
    mut rx: mpsc::Receiver<Publish>,
    metrics: Arc<Metrics>,
    token: CancellationToken,
) {
    let mut p = Publisher {
        cfg,
        store,
        janitor,
        mirror: NodeImage::default(),
        pending: NodeChange::default(),
        origins: Vec::new(),
        dirty: false,
        lease_due: false,
        members: BTreeMap::new(),
        metrics,
        store_up: None,
    };
    let mut lease = tokio::time::interval(p.cfg.refresh);
    lease.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut retry = tokio::time::interval(RETRY);
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ticks: u64 = 0;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        tokio::select! {
            biased;
            _ = token.cancelled() => break,
            // Before the events: a box sending events without pause keeps
            // the channel non-empty, and the lease must not lapse behind it
            // (the node would drop out of the farm while busiest).
            _ = lease.tick() => {
                ticks += 1;
                p.refresh_lease().await;
                if ticks.is_multiple_of(10) {
                    p.reap().await;
                }
            }
            n = rx.recv_many(&mut batch, MAX_BATCH) => {
                if n == 0 {
                    break;
                }
                for item in batch.drain(..) {
                    p.absorb(item);
                }
                // While the store is down only the retry tick writes, so
                // absorbing stays fast and the model is never held up by
                // timeouts.
                if p.store_up != Some(false) {
                    p.write().await;
                }
            }
            _ = retry.tick(), if p.needs_retry() => p.write().await,
        }
    }
    debug!(node.id = %p.cfg.node, "publisher stopped");
}

struct Publisher {
    cfg: PublisherConfig,
    store: Arc<dyn NodeStore>,
    /// Where expired nodes are reaped.
    janitor: Arc<dyn FarmAdmin>,
    /// Everything this node has published or must publish.
    mirror: NodeImage,
    /// Ops absorbed but not yet written.
    pending: NodeChange,
    /// Origin stamps (us) of the events whose changes are not yet written.
    origins: Vec<u64>,
    /// The store may differ from the mirror: write it whole.
    dirty: bool,
    /// A store operation failed: renew the lease before writing again.
    /// `replace` alone leaves `{id}:node` without a TTL and the node out of
    /// `nodes` (a restarted Redis), so readers would not see the node until
    /// the next refresh; and the lease tells whether the keys were lost.
    lease_due: bool,
    /// This node's membership claims (`{id}:members`), kept across a
    /// resync's `Replace` (the model rebuilt from the box has none).
    members: BTreeMap<(String, String), MemberEntry>,
    metrics: Arc<Metrics>,
    /// Last known store state, for logging transitions once.
    store_up: Option<bool>,
}

impl Publisher {
    fn absorb(&mut self, item: Publish) {
        match item {
            Publish::Change {
                change: c,
                origin_us,
            } => {
                if let Some(o) = origin_us
                    && self.origins.len() < MAX_PENDING_ORIGINS
                {
                    self.origins.push(o);
                }
                apply_to_mirror(&mut self.mirror, &c);
                self.pending.ops.extend(c.ops);
                if c.status.is_some() {
                    self.pending.status = c.status;
                }
            }
            Publish::Replace(mut image) => {
                if let Some(claims) = self.mirror.tables.remove(&Table::Members) {
                    image.tables.insert(Table::Members, claims);
                }
                self.mirror = image;
                self.pending = NodeChange::default();
                self.dirty = true;
            }
            Publish::Member(m) => {
                let ops = claim_change(&mut self.members, m).into_iter().collect();
                self.write_claims(ops);
            }
            Publish::Registrations(regs) => {
                let ops = reconcile_claims(&mut self.members, regs);
                self.write_claims(ops);
            }
        }
    }

    fn write_claims(&mut self, ops: Vec<HashOp>) {
        if ops.is_empty() {
            return;
        }
        let change = NodeChange { ops, status: None };
        apply_to_mirror(&mut self.mirror, &change);
        self.pending.ops.extend(change.ops);
    }

    fn needs_retry(&self) -> bool {
        self.lease_due || self.dirty || !self.pending.is_empty()
    }

    /// Writes what is pending; after a failure, the lease first.
    async fn write(&mut self) {
        if self.lease_due {
            self.refresh_lease().await;
        } else {
            self.flush().await;
        }
    }

    async fn flush(&mut self) {
        if self.dirty {
            match self.store.replace(&self.cfg.node, &self.mirror).await {
                Ok(()) => {
                    self.dirty = false;
                    self.pending = NodeChange::default();
                    self.metrics.store_writes.inc();
                    self.acknowledged();
                    self.mark(true, None);
                }
                Err(e) => self.mark(false, Some(&e)),
            }
        } else if !self.pending.is_empty() {
            let change = std::mem::take(&mut self.pending);
            match self.store.apply(&self.cfg.node, &change).await {
                Ok(()) => {
                    self.metrics.store_writes.inc();
                    self.acknowledged();
                    self.mark(true, None);
                }
                Err(e) => {
                    // MULTI is all or nothing, but we cannot know which; the
                    // mirror holds the truth: write it whole when back.
                    self.dirty = true;
                    self.mark(false, Some(&e));
                }
            }
        }
    }

    /// The store holds every absorbed change: their events are published.
    fn acknowledged(&mut self) {
        if !self.origins.is_empty() {
            self.metrics
                .observe_publish_latency(now_us(), &self.origins);
            self.origins.clear();
        }
    }

    async fn refresh_lease(&mut self) {
        let mut status = self.mirror.status.clone();
        status.updated_ms = now_ms();
        match self
            .store
            .lease(&self.cfg.node, &status, self.cfg.lease)
            .await
        {
            Ok(existed) => {
                self.lease_due = false;
                self.mirror.status = status;
                if !existed {
                    // The store lost our keys (restart without persistence,
                    // flush, failover to an empty replica, a lapsed lease):
                    // republish the node, its claims included. On the first
                    // lease this is just the start.
                    if self.store_up.is_some() {
                        info!(node.id = %self.cfg.node, "store lost this node's keys; republishing");
                    }
                    self.dirty = true;
                }
                self.mark(true, None);
                if self.needs_retry() {
                    self.flush().await;
                }
            }
            Err(e) => {
                self.dirty = true;
                self.mark(false, Some(&e));
            }
        }
    }

    async fn reap(&mut self) {
        match self.janitor.reap_expired(self.cfg.reap_after).await {
            Ok(gone) => {
                for id in gone {
                    info!(node.id = %id, "janitor removed expired node");
                }
            }
            Err(e) => debug!(error = %e, "janitor pass failed"),
        }
    }

    fn mark(&mut self, up: bool, err: Option<&locus_schema::StoreError>) {
        self.metrics.set_store_up(up);
        if !up {
            self.metrics.store_errors.inc();
            self.lease_due = true;
        }
        if self.store_up != Some(up) {
            match err {
                Some(e) => {
                    warn!(node.id = %self.cfg.node, error = %e, "store unavailable; keeping the model and retrying")
                }
                None => info!(node.id = %self.cfg.node, "store available"),
            }
            self.store_up = Some(up);
        }
    }
}

/// Applies one membership op to the claims; returns the field write, if
/// the claim changed. A registration replaces one with the same Call-ID or
/// Contact (sofia keeps one row per contact); the claim goes with the
/// user's last registration, or at once when the ended one is unknown and
/// none is left (a claim learnt from a call only).
fn claim_change(
    claims: &mut BTreeMap<(String, String), MemberEntry>,
    m: MemberOp,
) -> Option<HashOp> {
    match m {
        MemberOp::Add {
            domain,
            ext,
            groups,
            reg,
        } => {
            let key = (domain, ext);
            let entry = claims.entry(key.clone()).or_default();
            let before = entry.clone();
            if !groups.is_empty() {
                let mut groups = groups;
                groups.sort();
                groups.dedup();
                entry.groups = groups;
            }
            if let Some(r) = reg {
                entry.regs.retain(|old| {
                    old.call_id != r.call_id && (r.contact.is_empty() || old.contact != r.contact)
                });
                entry.regs.push(r);
            }
            if entry.groups.is_empty() && entry.regs.is_empty() {
                claims.remove(&key);
                return None;
            }
            (*entry != before || before == MemberEntry::default())
                .then(|| HashOp::member(&key.0, &key.1, Some(entry)))
        }
        MemberOp::Remove {
            domain,
            ext,
            call_id,
        } => {
            let key = (domain, ext);
            let entry = claims.get_mut(&key)?;
            if let Some(c) = &call_id {
                entry.regs.retain(|r| &r.call_id != c);
            }
            if call_id.is_none() || entry.regs.is_empty() {
                claims.remove(&key);
                return Some(HashOp::member(&key.0, &key.1, None));
            }
            Some(HashOp::member(&key.0, &key.1, Some(entry)))
        }
        // Resolved by the session (`user_data`) into an Add.
        MemberOp::Lookup { .. } => None,
    }
}

/// [`Publish::Registrations`]: the claims made to agree with the box's
/// registration list; returns the field writes.
fn reconcile_claims(
    claims: &mut BTreeMap<(String, String), MemberEntry>,
    listed: Vec<(String, String, RegClaim)>,
) -> Vec<HashOp> {
    let mut want: BTreeMap<(String, String), Vec<RegClaim>> = BTreeMap::new();
    for (domain, ext, reg) in listed {
        want.entry((domain, ext)).or_default().push(reg);
    }
    let mut ops = Vec::new();
    claims.retain(|key, entry| {
        let listed = want.remove(key).unwrap_or_default();
        let before = entry.regs.clone();
        entry
            .regs
            .retain(|r| listed.iter().any(|l| l.call_id == r.call_id));
        for l in listed {
            if !entry.regs.iter().any(|r| r.call_id == l.call_id) {
                entry.regs.push(l);
            }
        }
        // A claim learnt from a call only (no registration) goes too: the
        // box is the truth, and it holds no registration of the user.
        let keep = !entry.regs.is_empty();
        if !keep {
            ops.push(HashOp::member(&key.0, &key.1, None));
        } else if entry.regs != before {
            ops.push(HashOp::member(&key.0, &key.1, Some(entry)));
        }
        keep
    });
    for (key, regs) in want {
        let entry = MemberEntry {
            groups: Vec::new(),
            regs,
        };
        ops.push(HashOp::member(&key.0, &key.1, Some(&entry)));
        claims.insert(key, entry);
    }
    ops
}

/// Applies a change to the mirror image.
pub fn apply_to_mirror(image: &mut NodeImage, c: &NodeChange) {
    for op in &c.ops {
        let t = image.tables.entry(op.table).or_default();
        match &op.value {
            Some(v) => {
                t.insert(op.field.clone(), v.clone());
            }
            None => {
                t.remove(&op.field);
            }
        }
    }
    if let Some(s) = &c.status {
        image.status = s.clone();
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
