//! The fork: which branch goes next (serial failover on 408/5xx/timeout/
//! send error, or all at once), building and sending one branch (RFC 3261
//! 16.6: R-URI, Route, Record-Route, Via), and the best final when all
//! are done (16.7 item 6).

use super::Txn;
use crate::proxy::addr::{Hop, may_upgrade, relay_key, resolve};
use crate::proxy::branch::Branch;
use crate::proxy::build::set_ruri;
use crate::proxy::ids::{Outcome, best};
use crate::proxy::router::{Dest, Fork, Target};
use crate::sip::{SipMessage, StartLine, Transport};
use locus_schema::lock;

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
        let back = relay_key(self.fwd.top_via().ok().as_ref());
        let id = core.ids.next(self.lh, &back);
        lock(&core.clients).insert(id.clone(), self.tx.clone());
        let mut sent = None;
        // A phone reached over its flow: its side of our Record-Route
        // carries that flow, so the dialog's requests follow it too.
        let callee_flow = match &t.dest {
            Dest::Flow(f) if self.record => Some(core.keys.token(f)),
            _ => None,
        };
        let flows = (self.caller_flow.as_deref(), callee_flow.as_deref());
        let mut msg = self.prepare(&req, &hop, &id, flows);
        let mut bytes = msg.to_bytes();
        // RFC 3261 18.1.1: a request within 200 bytes of the path MTU goes
        // over a congestion-controlled transport when the target has one;
        // back to UDP if TCP cannot connect. Only with a TCP listener of
        // ours: the box sends the dialog's requests to our Record-Route.
        if hop.transport == Transport::Udp
            && bytes.len() + 200 > core.cfg.path_mtu
            && may_upgrade(&t.dest)
            && core.me.listener(Transport::Tcp, hop.addr).is_some()
        {
            let tcp = Hop::to(hop.addr, Transport::Tcp);
            let m = self.prepare(&req, &tcp, &id, flows);
            let b = m.to_bytes();
            match core.send(&tcp, b.clone()).await {
                Ok(()) => {
                    core.stats.upgrade();
                    sent = Some((tcp, m, b));
                }
                Err(e) => {
                    tracing::info!(peer = %hop.addr, error = %e, size = bytes.len(), "proxy: large request stays on UDP, TCP failed");
                }
            }
        }
        let hop = match sent {
            Some((tcp, m, b)) => {
                (msg, bytes) = (m, b);
                tcp
            }
            None => {
                if let Err(e) = core.send(&hop, bytes.clone()).await {
                    lock(&core.clients).remove(&id);
                    tracing::info!(peer = %hop.addr, error = %e, "proxy: branch not sent");
                    return self.unreachable();
                }
                hop
            }
        };
        if self.routed {
            core.stats
                .branch(self.label.as_str(), t.node.as_ref().map(|n| n.as_str()));
        }
        tracing::debug!(peer = %hop.addr, sip.branch = %id, "proxy: branch sent");
        // No other target left: wait as RFC 3261 would (Timer B / F), not
        // the failover timer (an in-dialog BYE to a busy box, the last box).
        let last = self.queue.is_empty();
        self.branches
            .push(Branch::new(id, t, msg, bytes, hop, &core.cfg, last));
        true
    }

    /// `req` as sent over `hop` on branch `id` (RFC 3261 16.6 items 4, 8):
    /// Record-Route (double when the two sides differ, RFC 5658), our Via,
    /// Content-Length for a stream. `flows`: the signed flow tokens of the
    /// caller's and the callee's side when they are phones (RFC 5626
    /// 5.3 style, `flow=` on the entry that side's peer pops last).
    fn prepare(
        &self,
        req: &SipMessage,
        hop: &Hop,
        id: &str,
        flows: (Option<&str>, Option<&str>),
    ) -> SipMessage {
        let me = &self.core.me;
        let mut req = req.clone();
        if self.record {
            let f = &self.flow;
            // Signed for this dialog: the gate follows an in-dialog
            // request from a phone only along a Record-Route we wrote.
            let sig = self
                .core
                .keys
                .record_route_sig(req.call_id().unwrap_or_default());
            let (caller, callee) = flows;
            let inside = me.record_side(f.transport, f.source, Some(f.local));
            let outside = me.record_side(hop.transport, hop.addr, me.sends_from(hop));
            if inside == outside && (caller.is_none() || callee.is_none()) {
                // One entry for both sides: a request arriving from the
                // flow it names goes on by its R-URI (the core).
                let rr = me.record_route(&inside, false, &sig, caller.or(callee));
                req.prepend_record_route(&rr);
            } else {
                // Each side sees the address it can reach; the callee pops
                // the inside entry last, the caller the outside one.
                req.prepend_record_route(&me.record_route(&inside, true, &sig, caller));
                req.prepend_record_route(&me.record_route(&outside, true, &sig, callee));
            }
        }
        req.headers.prepend("Via", &me.via(hop, id));
        hop.frame(&mut req);
        req
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
