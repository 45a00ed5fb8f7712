//! The fork: which branch goes next (serial failover on 408/5xx/timeout/
//! send error, or all at once), building and sending one branch (RFC 3261
//! 16.6: R-URI, Route, Record-Route, Via), and the best final when all
//! are done (16.7 item 6).

use super::Txn;
use crate::proxy::addr::resolve;
use crate::proxy::branch::Branch;
use crate::proxy::build::set_ruri;
use crate::proxy::core::lock;
use crate::proxy::ids::{Outcome, best};
use crate::proxy::router::{Fork, Target};
use crate::sip::StartLine;

impl Txn {
    /// Starts the next branch(es) or, when nothing is pending and nothing
    /// is left to try, sends the best final.
    pub(super) async fn advance(&mut self) {
        if self.final_status.is_some() || self.branches.iter().any(|b| b.outcome.is_none()) {
            return;
        }
        if !self.cancelled {
            match self.fork {
                Fork::Serial => {
                    while self.failover_ok
                        && let Some(t) = self.queue.pop_front()
                    {
                        if self.start(t).await {
                            return;
                        }
                    }
                }
                Fork::Parallel => {
                    let mut any = false;
                    let all: Vec<Target> = self.queue.drain(..).collect();
                    for t in all {
                        any |= self.start(t).await;
                    }
                    if any {
                        return;
                    }
                }
            }
        }
        self.send_best().await;
    }

    /// Forwards one branch; `false` when it could not be sent (counted as 503).
    pub(super) async fn start(&mut self, t: Target) -> bool {
        if self.tried > 0 && self.fork == Fork::Serial {
            self.core.stats.failover();
        }
        self.tried += 1;
        let core = self.core.clone();
        let mut req = self.fwd.clone();
        if let Some(u) = &t.ruri {
            set_ruri(&mut req, u.clone());
        }
        for r in t.route.iter().rev() {
            req.headers.prepend("Route", r);
        }
        let hop = match resolve(&t.dest).await {
            Ok(h) => h,
            Err(e) => {
                tracing::info!(error = %e, dest = ?t.dest, "proxy: branch unreachable");
                return self.unreachable();
            }
        };
        if self.record {
            let f = &self.flow;
            let inside = core
                .me
                .record_route(f.transport, f.source, Some(f.local), false);
            let outside = core.me.record_route(hop.1, hop.0, None, false);
            if inside == outside {
                req.prepend_record_route(&inside);
            } else {
                // RFC 5658 double Record-Route: each side sees the address it can reach.
                req.prepend_record_route(&core.me.record_route(
                    f.transport,
                    f.source,
                    Some(f.local),
                    true,
                ));
                req.prepend_record_route(&core.me.record_route(hop.1, hop.0, None, true));
            }
        }
        let id = core.ids.next(self.lh);
        req.headers.prepend("Via", &core.me.via(&hop, &id));
        let bytes = req.to_bytes();
        lock(&core.clients).insert(id.clone(), self.tx.clone());
        if let Err(e) = core.send(&hop, bytes.clone()).await {
            lock(&core.clients).remove(&id);
            tracing::info!(peer = %hop.0, error = %e, "proxy: branch not sent");
            return self.unreachable();
        }
        if self.routed {
            core.stats
                .branch(self.label.as_str(), t.node.as_ref().map(|n| n.as_str()));
        }
        tracing::debug!(peer = %hop.0, sip.branch = %id, "proxy: branch sent");
        // A non-INVITE with nowhere left to fail over to waits for its
        // answer the full Timer F (an in-dialog BYE to a busy box), not
        // the failover timer.
        let last = self.queue.is_empty();
        self.branches
            .push(Branch::new(id, t, req, bytes, hop, &core.cfg, last));
        true
    }

    pub(super) fn unreachable(&mut self) -> bool {
        self.outcomes.push((Outcome::Unreachable, None));
        self.failover_ok = true;
        false
    }

    /// Sends the best final (RFC 3261 16.7 item 6), or the one we make up.
    pub(super) async fn send_best(&mut self) {
        let picked = best(&self.outcomes.iter().map(|o| o.0).collect::<Vec<_>>());
        let real = picked.and_then(|i| self.outcomes[i].1.clone());
        match (real, picked.map(|i| self.outcomes[i].0)) {
            (Some(mut resp), _) => {
                // RFC 3261 16.7 item 6: a 503 from downstream is not ours to
                // pass on (it would make the caller avoid this proxy): 500.
                if let StartLine::Response { status, .. } = &mut resp.start
                    && *status == 503
                {
                    *status = 500;
                }
                self.relay(resp, false).await;
            }
            _ if self.cancelled => self.reply(487, "Request Terminated").await,
            (None, Some(o)) => {
                let reason = if o == Outcome::Timeout {
                    "Request Timeout"
                } else {
                    "Service Unavailable"
                };
                self.reply(o.status(), reason).await;
            }
            (None, None) => self.reply(503, "Service Unavailable").await,
        }
    }
}
