//! [`FarmSync`]: keeps the current [`FarmSnapshot`] in an `ArcSwap`, so a
//! SIP request reads it lock-free and never waits on Redis.
//!
//! Subscribe first, then read the whole farm (a change made during the
//! read still arrives as a notice). Every notice schedules a rebuild,
//! coalesced to at most one per `sync.coalesce`; a full re-read every
//! `sync.refresh` is the safety net, since pub/sub is at-most-once and
//! load figures change without notices. The store has no per-node read,
//! so every rebuild reads the farm. When the store fails, the last
//! snapshot stays in force: logged once, [`FarmSync::is_stale`] is true
//! until a read succeeds again; the subscription is retried at the next
//! refresh. OPTIONS probes still count meanwhile: a probe flip rebuilds
//! from the last view read, leases judged as of that read, so a box that
//! dies during a Redis outage stops taking calls.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use locus_schema::{FarmRead, FarmView, Notice};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::health::{Health, targets_of};
use crate::routing::affinity::Affinity;
use crate::routing::config::RoutingConfig;
use crate::routing::inflight::InFlight;
use crate::routing::snapshot::FarmSnapshot;

/// The current farm snapshot and the task that keeps it fresh.
#[derive(Debug)]
pub struct FarmSync {
    cfg: Arc<RoutingConfig>,
    current: ArcSwap<FarmSnapshot>,
    stale: AtomicBool,
    inflight: Arc<InFlight>,
    /// Call-ID pins (proxy state beside the view, like `inflight`).
    affinity: Arc<Affinity>,
    rebuilds: AtomicU64,
    failures: AtomicU64,
    /// OPTIONS probes: a node is up only when its probe is (and, for agent
    /// nodes, its lease and ESL link). `None`: leases alone decide.
    health: Option<Health>,
    /// The last view read and when (ms), to fold probe flips into while
    /// the store is down.
    last: Mutex<Option<(Arc<FarmView>, u64)>>,
}

use locus_schema::now_ms;

async fn probe_flip(health: Option<&Health>) {
    match health {
        Some(h) => h.changed().await,
        None => std::future::pending().await,
    }
}

async fn next_notice(rx: Option<&mut mpsc::Receiver<String>>) -> Option<String> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl FarmSync {
    /// A sync whose snapshot holds only the configured static nodes until
    /// the first read; stale until then.
    pub fn new(cfg: Arc<RoutingConfig>) -> Self {
        let empty = FarmSnapshot::build(&FarmView::default(), now_ms(), &cfg);
        let affinity = Arc::new(Affinity::new(&cfg.affinity));
        Self {
            cfg,
            current: ArcSwap::from_pointee(empty),
            stale: AtomicBool::new(true),
            inflight: Arc::new(InFlight::new()),
            affinity,
            rebuilds: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            health: None,
            last: Mutex::new(None),
        }
    }

    /// Folds OPTIONS probe results into every snapshot, keeps the prober's
    /// targets in step with the farm, and rebuilds when a probe flips.
    pub fn with_health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }

    /// The current snapshot (lock-free; keep it for one decision).
    pub fn snapshot(&self) -> Arc<FarmSnapshot> {
        self.current.load_full()
    }

    /// True before the first successful read and while the store fails.
    pub fn is_stale(&self) -> bool {
        self.stale.load(Ordering::Relaxed)
    }

    /// The in-flight counts, reset from every new snapshot.
    pub fn inflight(&self) -> &Arc<InFlight> {
        &self.inflight
    }

    /// Call-ID pins, shared by the SIP proxy and the route hook.
    pub fn affinity(&self) -> &Arc<Affinity> {
        &self.affinity
    }

    /// Snapshots built so far.
    pub fn rebuilds(&self) -> u64 {
        self.rebuilds.load(Ordering::Relaxed)
    }

    /// Failed reads so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Keeps the snapshot current until `token` is cancelled.
    pub async fn run(&self, store: Arc<dyn FarmRead>, token: CancellationToken) {
        let coalesce = self.cfg.sync.coalesce;
        let mut tick = tokio::time::interval(self.cfg.sync.refresh);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut notices: Option<mpsc::Receiver<String>> = None;
        let mut due: Option<Instant> = None;
        let mut last = Instant::now();
        let mut down = false;
        loop {
            let wait = due.unwrap_or_else(Instant::now);
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                _ = tick.tick() => {
                    if notices.is_none() {
                        notices = match store.subscribe().await {
                            Ok(rx) => Some(rx),
                            Err(e) => {
                                tracing::debug!(error = %e, "subscribe failed; retry at next refresh");
                                None
                            }
                        };
                    }
                }
                msg = next_notice(notices.as_mut()), if notices.is_some() => {
                    match msg {
                        Some(m) => match Notice::parse(&m) {
                            Ok(n) => tracing::trace!(node.id = %n.node, "farm notice"),
                            Err(e) => {
                                tracing::debug!(error = %e, "unreadable notice ignored");
                                continue;
                            }
                        },
                        None => {
                            tracing::debug!("notice subscription closed; retry at next refresh");
                            notices = None;
                            continue;
                        }
                    }
                    if due.is_none() {
                        due = Some((last + coalesce).max(Instant::now()));
                    }
                    continue;
                }
                () = probe_flip(self.health.as_ref()) => {
                    if due.is_none() {
                        due = Some((last + coalesce).max(Instant::now()));
                    }
                    continue;
                }
                () = tokio::time::sleep_until(wait), if due.is_some() => {}
            }
            // A tick or a due rebuild: read the farm (cancellable).
            tokio::select! {
                biased;
                () = token.cancelled() => break,
                ok = self.refresh(store.as_ref()) => {
                    if ok && down {
                        tracing::info!("farm store back: routing on a fresh view");
                    } else if !ok && !down {
                        tracing::warn!("farm store unreachable: routing on the last view");
                    }
                    down = !ok;
                }
            }
            last = Instant::now();
            due = None;
        }
    }

    /// Reads the farm and swaps in a new snapshot; false when the store
    /// failed (then probes are folded into the last view read).
    pub async fn refresh(&self, store: &dyn FarmRead) -> bool {
        match store.read_farm().await {
            Ok(view) => {
                let at = now_ms();
                self.install(&view, at);
                *locus_schema::lock(&self.last) = Some((Arc::new(view), at));
                self.stale.store(false, Ordering::Relaxed);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "farm read failed");
                self.failures.fetch_add(1, Ordering::Relaxed);
                self.stale.store(true, Ordering::Relaxed);
                let last = locus_schema::lock(&self.last).clone();
                // Leases are judged at the time of the read (the agents may
                // be fine and only Redis away); only probe results are new.
                if let (Some(_), Some((view, at))) = (&self.health, last) {
                    self.install(&view, at);
                }
                false
            }
        }
    }

    /// Builds a snapshot of `view` as of `at_ms` with the probes' verdicts
    /// and swaps it in.
    fn install(&self, view: &FarmView, at_ms: u64) {
        let snap = match &self.health {
            Some(h) => {
                let snap = FarmSnapshot::build_with(view, at_ms, &self.cfg, &|id| h.is_up(id));
                for e in h.set_targets(targets_of(&snap)) {
                    tracing::debug!(error = %e, "node not probed");
                }
                snap
            }
            None => FarmSnapshot::build(view, at_ms, &self.cfg),
        };
        self.inflight.sync(&snap);
        self.current.store(Arc::new(snap));
        self.rebuilds.fetch_add(1, Ordering::Relaxed);
    }
}
