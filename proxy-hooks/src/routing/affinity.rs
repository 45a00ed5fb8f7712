//! [`Affinity`]: the farm node each recent out-of-dialog Call-ID was sent
//! to, so that the retry of a request a box challenged reaches that box
//! again whatever the algorithm.
//!
//! Why: a FreeSWITCH box answers a phone's INVITE (vanilla `auth-calls`),
//! REGISTER, SUBSCRIBE or MESSAGE with 401/407 and a nonce only it knows.
//! The phone's authenticated retry is a new transaction (same Call-ID, next
//! CSeq, RFC 3261 22.2); sent to another box it meets an unknown nonce and
//! a `stale=true` challenge, on and on (capture `b0-basic-call-least-calls`:
//! the first attempt's in-flight count made `least_calls` pick the other box
//! for every retry).
//!
//! The SIP proxy pins a Call-ID when a node answers 401/407 (the node that
//! really answered, after any failover); the HTTP hook, which never sees
//! responses, pins every placement it hands out. A pinned Call-ID goes to
//! its node first while that node is up (draining included: the retry
//! finishes what the box started), without a round-robin turn or another
//! in-flight count; the rest of the decision stays as failover.
//!
//! Bounded (`capacity` entries, oldest evicted first) and short-lived
//! (`ttl`, default 32 s = Timer B, 64*T1: past that the phone's own
//! transaction has given up), memory only, behind one short mutex.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use locus_schema::NodeId;
use prometheus_client::metrics::counter::Counter;
use serde::Deserialize;

use crate::routing::request::{Decision, RouteRequest};
use crate::routing::snapshot::{FarmSnapshot, Node};
use locus_schema::lock;

/// `[proxy.routing.affinity]`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AffinityConfig {
    /// How long a Call-ID stays pinned to its node.
    #[serde(with = "humantime_serde")]
    pub ttl: Duration,
    /// Most Call-IDs remembered; the oldest go first.
    pub capacity: usize,
}

impl Default for AffinityConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(32),
            capacity: 65_536,
        }
    }
}

/// Whether a decision may take the next round-robin turn (a pinned retry
/// only peeks, so a challenged call does not cost its box two turns).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Turn {
    /// Advance the round-robin counter.
    Take,
    /// Read it only.
    Peek,
}

/// A decision, and whether it went to a pinned Call-ID's node.
#[derive(Clone, Debug)]
pub struct Pinned {
    /// The targets, the pinned node first on a hit.
    pub decision: Decision,
    /// True when the Call-ID was pinned: do not count the request in
    /// flight again, do not pin it again.
    pub hit: bool,
}

#[derive(Debug, Default)]
struct Table {
    /// Call-ID -> (node, expiry, pin number).
    map: HashMap<Arc<str>, (NodeId, Instant, u64)>,
    /// Pins in order (= expiry order: one ttl for all); one whose number
    /// is no longer the map's was overwritten by a later pin.
    order: VecDeque<(Arc<str>, Instant, u64)>,
    /// The next pin number.
    next: u64,
}

/// Call-ID -> node pins with their hit counter.
#[derive(Debug)]
pub struct Affinity {
    cfg: AffinityConfig,
    table: Mutex<Table>,
    hits: Counter,
}

impl Default for Affinity {
    fn default() -> Self {
        Self::new(&AffinityConfig::default())
    }
}

impl Affinity {
    /// An empty table.
    pub fn new(cfg: &AffinityConfig) -> Self {
        Self {
            cfg: cfg.clone(),
            table: Mutex::new(Table::default()),
            hits: Counter::default(),
        }
    }

    /// Pins `call_id` to `node` for the ttl (again, if already pinned).
    pub fn remember(&self, call_id: &str, node: &NodeId) {
        self.remember_at(call_id, node, Instant::now());
    }

    fn remember_at(&self, call_id: &str, node: &NodeId, now: Instant) {
        if call_id.is_empty() || self.cfg.capacity == 0 {
            return;
        }
        let until = now + self.cfg.ttl;
        let mut t = lock(&self.table);
        t.purge(now, self.cfg.capacity.saturating_sub(1));
        let key: Arc<str> = Arc::from(call_id);
        let n = t.next;
        t.next += 1;
        t.map.insert(key.clone(), (node.clone(), until, n));
        t.order.push_back((key, until, n));
    }

    /// The node `call_id` is pinned to, if the pin has not expired.
    pub fn node(&self, call_id: &str) -> Option<NodeId> {
        self.node_at(call_id, Instant::now())
    }

    fn node_at(&self, call_id: &str, now: Instant) -> Option<NodeId> {
        let t = lock(&self.table);
        t.map
            .get(call_id)
            .filter(|(_, until, _)| *until > now)
            .map(|(node, _, _)| node.clone())
    }

    /// Call-IDs pinned now (expired ones may linger until the next pin).
    pub fn len(&self) -> usize {
        lock(&self.table).map.len()
    }

    /// True when nothing is pinned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Requests sent to their Call-ID's pinned node so far.
    pub fn hits(&self) -> u64 {
        self.hits.get()
    }

    /// The hit counter, to register in a metrics registry.
    pub fn hits_counter(&self) -> &Counter {
        &self.hits
    }

    /// Routes `req` by `decide`: when its Call-ID (out of dialog) is pinned
    /// to a node up in `snap`, that node first, then the decision's others
    /// (computed with [`Turn::Peek`]; rule and reason kept); else the plain
    /// decision.
    pub(crate) fn route(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        decide: impl FnOnce(Turn) -> Decision,
    ) -> Pinned {
        let pinned = (!req.in_dialog)
            .then(|| self.node(req.call_id))
            .flatten()
            .and_then(|id| up_node(snap, &id));
        let Some(node) = pinned else {
            return Pinned {
                decision: decide(Turn::Take),
                hit: false,
            };
        };
        let mut d = decide(Turn::Peek);
        d.targets.retain(|t| t.id != node.id);
        d.targets.insert(0, node);
        self.hits.inc();
        Pinned {
            decision: d,
            hit: true,
        }
    }
}

impl Table {
    /// Drops expired pins, then the oldest until at most `keep` remain.
    fn purge(&mut self, now: Instant, keep: usize) {
        // Each round pops one entry, so this ends.
        while let Some((key, until, n)) = self.order.front() {
            if *until > now && self.order.len() <= keep {
                break;
            }
            if self.map.get(key).is_some_and(|(_, _, m)| m == n) {
                self.map.remove(key);
            }
            self.order.pop_front();
        }
    }
}

/// Node `id` of `snap` when it is up.
fn up_node(snap: &FarmSnapshot, id: &NodeId) -> Option<Arc<Node>> {
    snap.find(id)
        .and_then(|i| snap.node(i))
        .filter(|n| n.up)
        .cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use locus_schema::{EslLink, FarmView, NodeView};

    use super::*;
    use crate::routing::config::RoutingConfig;
    use crate::routing::request::Rule;

    fn id(s: &str) -> NodeId {
        NodeId::new(s).unwrap()
    }

    fn table(ttl_s: u64, capacity: usize) -> Affinity {
        Affinity::new(&AffinityConfig {
            ttl: Duration::from_secs(ttl_s),
            capacity,
        })
    }

    #[test]
    fn pins_until_the_ttl_and_repins() {
        let a = table(32, 16);
        let t0 = Instant::now();
        a.remember_at("c1", &id("fs1"), t0);
        assert_eq!(
            a.node_at("c1", t0 + Duration::from_secs(31)),
            Some(id("fs1"))
        );
        assert_eq!(a.node_at("c1", t0 + Duration::from_secs(32)), None);
        assert_eq!(a.node_at("c2", t0), None);
        // A new challenge from another node moves the pin and restarts it.
        a.remember_at("c1", &id("fs2"), t0 + Duration::from_secs(20));
        assert_eq!(
            a.node_at("c1", t0 + Duration::from_secs(40)),
            Some(id("fs2"))
        );
        // The first pin's expiry does not take the second one with it.
        a.remember_at("c3", &id("fs1"), t0 + Duration::from_secs(33));
        assert_eq!(
            a.node_at("c1", t0 + Duration::from_secs(40)),
            Some(id("fs2"))
        );
        assert_eq!(a.len(), 2, "c1 (again) and c3");
        // Empty Call-IDs are never pinned.
        a.remember_at("", &id("fs1"), t0);
        assert_eq!(a.node_at("", t0), None);
    }

    #[test]
    fn bounded_oldest_first_and_expired_swept() {
        let a = table(32, 3);
        let t0 = Instant::now();
        for i in 0..10 {
            a.remember_at(&format!("c{i}"), &id("fs1"), t0);
        }
        assert_eq!(a.len(), 3);
        assert_eq!(a.node_at("c9", t0), Some(id("fs1")));
        assert_eq!(a.node_at("c6", t0), None, "evicted, oldest first");
        // One Call-ID pinned over and over stays one entry, and the deque
        // of re-pins stays bounded too.
        for _ in 0..100 {
            a.remember_at("same", &id("fs2"), t0);
        }
        assert!(lock(&a.table).order.len() <= 3);
        assert_eq!(a.node_at("same", t0), Some(id("fs2")));
        // Expired pins go at the next pin.
        a.remember_at("late", &id("fs1"), t0 + Duration::from_secs(60));
        assert_eq!(a.len(), 1);
        let none = table(32, 0);
        none.remember_at("c", &id("fs1"), t0);
        assert!(none.is_empty());
    }

    /// Nodes fs1 and fs2, those in `dead` with an expired lease.
    fn snap(dead: &[&str]) -> FarmSnapshot {
        let mut view = FarmView::default();
        for name in ["fs1", "fs2"] {
            let mut v = NodeView {
                id: Some(id(name)),
                live: !dead.contains(&name),
                heartbeat_ms: 1,
                ..NodeView::default()
            };
            let s = &mut v.image.status;
            s.sip_uri = format!("sip:{name}.test:5060");
            s.esl = EslLink::Up;
            s.weight = 1;
            s.updated_ms = 1;
            view.nodes.insert(id(name), v);
        }
        FarmSnapshot::build(&view, 2, &RoutingConfig::default())
    }

    #[test]
    fn a_pinned_call_id_goes_first_while_its_node_is_up() {
        let a = table(32, 16);
        a.remember("c1", &id("fs2"));
        let req = RouteRequest::invite("9196", "d", "1000", "c1");
        // The engine would say fs1 then fs2; the pin puts fs2 first and
        // only peeks at the round-robin turn.
        let up = snap(&[]);
        let both = |s: &FarmSnapshot| s.nodes().to_vec();
        let mut turns = Vec::new();
        let p = a.route(&up, &req, |t| {
            turns.push(t);
            Decision::new(both(&up), Rule::Standard, "test")
        });
        assert!(p.hit);
        assert_eq!(p.decision.ids(), ["fs2", "fs1"]);
        assert_eq!(p.decision.rule, Rule::Standard);
        assert_eq!(turns, [Turn::Peek]);
        assert_eq!(a.hits(), 1);
        // Not in the decision at all (e.g. draining): still first.
        let p = a.route(&up, &req, |_| {
            Decision::new(vec![up.nodes()[0].clone()], Rule::Standard, "t")
        });
        assert_eq!(p.decision.ids(), ["fs2", "fs1"]);

        // Its node down: normal routing, a turn taken, no hit.
        let down = snap(&["fs2"]);
        let mut turns = Vec::new();
        let p = a.route(&down, &req, |t| {
            turns.push(t);
            Decision::new(vec![down.nodes()[0].clone()], Rule::Standard, "test")
        });
        assert!(!p.hit);
        assert_eq!(p.decision.ids(), ["fs1"]);
        assert_eq!(turns, [Turn::Take]);
        assert_eq!(a.hits(), 2);

        // Another Call-ID, or an in-dialog request: not pinned.
        let other = RouteRequest::invite("9196", "d", "1000", "c2");
        assert!(
            !a.route(&up, &other, |_| Decision::new(vec![], Rule::Standard, "t"))
                .hit
        );
        let in_dialog = RouteRequest {
            in_dialog: true,
            ..req
        };
        assert!(
            !a.route(&up, &in_dialog, |_| Decision::new(
                vec![],
                Rule::InDialog,
                "t"
            ))
            .hit
        );
    }

    #[test]
    fn concurrent_pins_stay_bounded() {
        let a = Arc::new(table(32, 100));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for i in 0..1000 {
                        a.remember(&format!("t{t}-{i}"), &id("fs1"));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(a.len(), 100);
    }
}
