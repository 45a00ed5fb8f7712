//! What a response does to its transaction (RFC 3261 16.7): provisional
//! ones restart the branch's timer and go upstream; finals are ACKed
//! (non-2xx), counted as the branch's outcome, offered to the router (302
//! redirects), relayed (2xx at once, the best non-2xx when all are done) or
//! released (a late 2xx from a branch given up after the caller got its
//! final, see `crate::proxy::release`); CANCELs for the other branches.

use tokio::time::Instant;

use super::{MAX_REDIRECTS, Txn};
use crate::proxy::build::ack_for;
use crate::proxy::ids::Outcome;
use crate::proxy::router::Label;
use crate::sip::SipMessage;

impl Txn {
    pub(super) async fn cancel_branches(&mut self, except: Option<usize>, give_up: bool) {
        let now = Instant::now();
        for (i, b) in self.branches.iter_mut().enumerate() {
            if Some(i) != except && b.outcome.is_none() {
                b.cancel(&self.core, now, give_up).await;
            }
        }
    }

    pub(super) async fn on_response(&mut self, mut resp: SipMessage) {
        let Some(status) = resp.status() else { return };
        let Some(i) = resp.top_via().ok().and_then(|v| {
            v.branch()
                .and_then(|id| self.branches.iter().position(|b| b.id == id))
        }) else {
            return;
        };
        let Ok((_, method)) = resp.cseq() else { return };
        if method == "CANCEL" {
            self.branches[i].cancel_answered();
            return;
        }
        // RFC 3261 17.1.3: a response matches by branch *and* CSeq method.
        if self.branches[i].req.method() != Some(method) {
            self.core
                .stats
                .drop_one(crate::proxy::stats::DropReason::Unmatched);
            return;
        }
        let now = Instant::now();
        if status < 200 {
            self.branches[i].on_provisional(&self.core, now).await;
            let b = &self.branches[i];
            if status > 100 && b.outcome.is_none() && self.final_status.is_none() {
                self.relay(resp, true).await;
            }
            return;
        }
        if self.invite && status >= 300 {
            let ack = ack_for(&self.branches[i].req, &resp).to_bytes();
            self.branches[i].send(&self.core, ack).await;
        }
        let first = !self.branches[i].final_seen;
        self.branches[i].on_final();
        let is_2xx = status < 300;
        if self.branches[i].released {
            // Queued before the release took its branch id over: it ACKs
            // the retransmissions.
            return;
        }
        // A 2xx from a branch we gave up on, after the caller got its
        // final (another branch's 2xx, or our 408/487): never a second
        // answer upstream; ACK and BYE it here.
        if is_2xx
            && first
            && self.invite
            && self.final_status.is_some()
            && self.branches[i].given_up()
        {
            self.branches[i].outcome = Some(Outcome::Final(status));
            self.branches[i].released = true;
            let b = &self.branches[i];
            crate::proxy::release::spawn(
                &self.core,
                &b.req,
                &resp,
                b.hop,
                &b.id,
                self.lh,
                &self.shutdown,
            );
            return;
        }
        // A 2xx always goes upstream, even a repeated one (RFC 3261 16.7 item 5).
        if !first {
            if is_2xx {
                self.relay(resp, false).await;
            }
            return;
        }
        // The first final of a branch that timed out: a non-2xx is only
        // absorbed (ACKed above); a 2xx before any final went upstream
        // wins the call like any other (the caller is still waiting).
        if self.branches[i].outcome.is_some() && !is_2xx {
            return;
        }
        self.branches[i].outcome = Some(Outcome::Final(status));
        let redirect = if self.routed {
            let b = &self.branches[i];
            self.core
                .router
                .on_final(&b.req, &self.flow, &b.target, &mut resp)
                .await
        } else {
            None
        };
        if is_2xx {
            let was_final = self.final_status.is_some();
            self.relay(resp, false).await;
            if !was_final {
                self.queue.clear();
                self.cancel_branches(Some(i), true).await;
            }
            return;
        }
        if let Some(targets) =
            redirect.filter(|_| status < 600 && !self.cancelled && self.final_status.is_none())
            && self.redirects < MAX_REDIRECTS
        {
            self.redirects += 1;
            self.core.stats.redirect();
            self.queue = targets.into();
            self.label = Label::Redirect;
            self.failover_ok = true;
        } else {
            self.failover_ok = status == 408 || (500..600).contains(&status);
            if status >= 600 {
                self.queue.clear();
                self.cancel_branches(Some(i), true).await;
            }
            self.outcomes.push((Outcome::Final(status), Some(resp)));
        }
        self.advance().await;
    }
}
