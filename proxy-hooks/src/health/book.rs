//! [`Health`]: the probe book (targets, outstanding probes by Via branch,
//! per-node counters and state) and the lock-free up map routing reads.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use locus_schema::NodeId;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{HealthConfig, HealthError, HealthStats, ProbeState, Target};
use crate::sip::{SipMessage, SipTransport, Uri};

/// Probes of every target node; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Health {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health")
            .field("cfg", &self.inner.cfg)
            .finish_non_exhaustive()
    }
}

pub(super) struct Inner {
    pub(super) cfg: HealthConfig,
    pub(super) transport: SipTransport,
    /// Branches of this prober start with it, so late answers are still ours.
    pub(super) prefix: String,
    up: ArcSwap<HashMap<NodeId, bool>>,
    book: Mutex<Book>,
    pub(super) stats: HealthStats,
    changed: Notify,
    /// A target was added: probe it now, not an interval later (a node
    /// that appears with the first farm read is routable within one
    /// round trip).
    pub(super) added: Notify,
}

#[derive(Default)]
pub(super) struct Book {
    pub(super) nodes: HashMap<NodeId, Tracked>,
    /// Outstanding probes: branch -> (node, deadline).
    pub(super) pending: HashMap<String, (NodeId, Instant)>,
    pub(super) seq: u64,
}

pub(super) struct Tracked {
    pub(super) target: Target,
    pub(super) state: ProbeState,
    fails: u32,
    oks: u32,
    pub(super) cseq: u32,
    pub(super) pending: Option<String>,
}

impl Tracked {
    /// Counts one result; the new state when it flips.
    fn record(&mut self, ok: bool, cfg: &HealthConfig) -> Option<ProbeState> {
        let next = if ok {
            self.fails = 0;
            self.oks = self.oks.saturating_add(1);
            match self.state {
                ProbeState::Up => None,
                ProbeState::Unknown => Some(ProbeState::Up),
                ProbeState::Down => (self.oks >= cfg.up_after).then_some(ProbeState::Up),
            }
        } else {
            self.oks = 0;
            self.fails = self.fails.saturating_add(1);
            (self.state != ProbeState::Down && self.fails >= cfg.down_after)
                .then_some(ProbeState::Down)
        };
        if let Some(s) = next {
            self.state = s;
        }
        next
    }
}

impl Health {
    /// A prober sending through `transport` (which must listen on UDP, or
    /// TCP, in each target's address family). Start it with [`Health::run`].
    pub fn new(cfg: HealthConfig, transport: SipTransport) -> Health {
        use std::hash::BuildHasher;
        // A per-process random tag: branches stay unique across restarts
        // (RFC 3261 8.1.1.7) without a dependency on `rand`.
        let salt = std::collections::hash_map::RandomState::new().hash_one(std::process::id());
        Health {
            inner: Arc::new(Inner {
                cfg,
                transport,
                prefix: format!("z9hG4bK-lh{salt:016x}-"),
                up: ArcSwap::default(),
                book: Mutex::new(Book::default()),
                stats: HealthStats::default(),
                changed: Notify::new(),
                added: Notify::new(),
            }),
        }
    }

    /// Whether the node's probes say it is up (unknown and untracked nodes
    /// are not). Lock-free.
    pub fn is_up(&self, id: &NodeId) -> bool {
        self.inner.up.load().get(id).copied().unwrap_or(false)
    }

    /// The node's probe state, `None` when it is not a target.
    pub fn state(&self, id: &NodeId) -> Option<ProbeState> {
        self.inner.lock().nodes.get(id).map(|t| t.state)
    }

    /// Counters.
    pub fn stats(&self) -> &HealthStats {
        &self.inner.stats
    }

    /// The configuration in use.
    pub fn config(&self) -> &HealthConfig {
        &self.inner.cfg
    }

    /// Resolves when a node next flips up or down (e.g. to rebuild the
    /// routing snapshot at once instead of at the next refresh).
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// Replaces the probe targets (call on every snapshot rebuild, with
    /// [`super::targets_of`]). Nodes whose URI is unchanged keep their
    /// state and counters; new or moved ones start unknown; gone ones are
    /// forgotten. Returns the targets refused (they are never up).
    pub fn set_targets(&self, targets: Vec<(NodeId, Uri)>) -> Vec<HealthError> {
        let mut refused = Vec::new();
        let mut added = false;
        let mut book = self.inner.lock();
        let mut old = std::mem::take(&mut book.nodes);
        for (id, uri) in targets {
            match Target::new(id.clone(), uri) {
                Ok(target) => {
                    let kept = old.remove(&id).filter(|t| t.target == target);
                    added |= kept.is_none();
                    let tracked = kept.unwrap_or(Tracked {
                        target,
                        state: ProbeState::Unknown,
                        fails: 0,
                        oks: 0,
                        cseq: 0,
                        pending: None,
                    });
                    book.nodes.insert(id, tracked);
                }
                Err(e) => {
                    tracing::warn!(node.id = %id, error = %e, "health: probe target refused");
                    refused.push(e);
                }
            }
        }
        for (_, gone) in old {
            if let Some(b) = gone.pending {
                book.pending.remove(&b);
            }
        }
        self.inner.publish(&book);
        drop(book);
        if added {
            self.inner.added.notify_one();
        }
        refused
    }

    /// Feeds one inbound message; true when it was a response to one of
    /// our probes (consumed: the proxy must not forward it).
    pub fn on_response(&self, msg: &SipMessage) -> bool {
        let (status, branch) = match crate::sip::probe::answer_to(msg, &self.inner.prefix) {
            None => return false,
            Some(None) => return true,
            Some(Some(answer)) => answer,
        };
        let mut book = self.inner.lock();
        let Some((node, _)) = book.pending.remove(&branch) else {
            self.inner.stats.late.fetch_add(1, Ordering::Relaxed);
            return true;
        };
        let ok = status != 503;
        let counter = if ok {
            &self.inner.stats.ok
        } else {
            &self.inner.stats.unavailable
        };
        counter.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(node.id = %node, status, "health: probe answered");
        self.inner
            .result(&mut book, &node, ok, status.to_string().as_str());
        true
    }
}

impl Inner {
    pub(super) fn lock(&self) -> MutexGuard<'_, Book> {
        // A panic elsewhere while holding the book leaves plain data behind.
        locus_schema::lock(&self.book)
    }

    /// Counts a result for `node` (clearing its outstanding probe) and
    /// republishes the up map when it flips.
    pub(super) fn result(&self, book: &mut Book, node: &NodeId, ok: bool, why: &str) {
        let Some(t) = book.nodes.get_mut(node) else {
            return;
        };
        t.pending = None;
        let Some(state) = t.record(ok, &self.cfg) else {
            return;
        };
        let uri = t.target.uri.to_string();
        match state {
            ProbeState::Up => {
                self.stats.went_up.fetch_add(1, Ordering::Relaxed);
                tracing::info!(node.id = %node, target = %uri, "health: node up");
            }
            _ => {
                self.stats.went_down.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(node.id = %node, target = %uri, last = why, "health: node down");
            }
        }
        self.publish(book);
        self.changed.notify_waiters();
    }

    fn publish(&self, book: &Book) {
        let map = book
            .nodes
            .iter()
            .map(|(id, t)| (id.clone(), t.state == ProbeState::Up))
            .collect();
        self.up.store(Arc::new(map));
    }
}
