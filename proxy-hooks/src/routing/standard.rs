//! Rule 5: standard calls, spread over the nodes taking new work (up, not
//! draining, not spares) by the configured [`Algorithm`]. The failover
//! list is every such node in the algorithm's order.
//!
//! * `least_calls`: fewest (published calls + in-flight INVITEs); ties go
//!   by rendezvous of the Call-ID, so equal nodes share a burst even before
//!   the in-flight counts grow, and a retransmission picks the same node.
//! * `weighted`: weighted rendezvous of the Call-ID (share = weight share).
//! * `round_robin`: the nodes by id, rotated by a counter (the retry of a
//!   challenged request, pinned to its node, takes no turn).
//! * `hash_callid` / `hash_ruri`: rendezvous of the Call-ID / `user@domain`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::routing::affinity::Turn;
use crate::routing::config::Algorithm;
use crate::routing::engine::{Engine, fresh, ranked_ix};
use crate::routing::inflight::InFlight;
use crate::routing::rendezvous;
use crate::routing::request::{Decision, RouteRequest, Rule};
use crate::routing::snapshot::{FarmSnapshot, Node, NodeIx};

impl Engine {
    pub(crate) fn standard(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        inflight: &InFlight,
        turn: Turn,
    ) -> Decision {
        let cands = fresh(snap);
        if cands.is_empty() {
            return Decision::new(Vec::new(), Rule::Standard, "no routable node");
        }
        let nodes = snap.nodes();
        let (order, reason): (Vec<NodeIx>, &'static str) = match self.algorithm {
            Algorithm::LeastCalls => {
                let k = rendezvous::hash(req.call_id);
                let mut v: Vec<(u64, u64, NodeIx)> = cands
                    .iter()
                    .map(|&i| {
                        let n = &nodes[i];
                        let load = u64::from(n.calls) + u64::from(inflight.count(&n.id));
                        (load, rendezvous::score(k, n.hash), i)
                    })
                    .collect();
                v.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
                (v.into_iter().map(|(_, _, i)| i).collect(), "least calls")
            }
            Algorithm::Weighted => {
                let k = rendezvous::hash(req.call_id);
                let mut v: Vec<(f64, NodeIx)> = cands
                    .iter()
                    .map(|&i| {
                        (
                            rendezvous::weighted_score(k, nodes[i].hash, nodes[i].weight),
                            i,
                        )
                    })
                    .collect();
                v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                (v.into_iter().map(|(_, i)| i).collect(), "weighted")
            }
            Algorithm::RoundRobin => {
                let mut v = cands;
                let at = match turn {
                    Turn::Take => self.round_robin.fetch_add(1, Ordering::Relaxed),
                    Turn::Peek => self.round_robin.load(Ordering::Relaxed),
                } % v.len();
                v.rotate_left(at);
                (v, "round robin")
            }
            Algorithm::HashCallid => (ranked_ix(snap, req.call_id, &cands), "Call-ID hash"),
            Algorithm::HashRuri => {
                let mut k = format!("{}@{}", req.ruri_user, req.ruri_domain);
                k.make_ascii_lowercase();
                (ranked_ix(snap, &k, &cands), "R-URI hash")
            }
        };
        let targets: Vec<Arc<Node>> = order.into_iter().map(|i| nodes[i].clone()).collect();
        Decision::new(targets, Rule::Standard, reason)
    }
}
