//! What goes upstream: relayed responses (our Via popped, RFC 3261 16.7
//! item 9), our own replies, and the final response's bookkeeping (Timers
//! G/H/I and the lingering that absorbs retransmissions, 17.2.1).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::Txn;
use crate::sip::{SipMessage, Transport};

impl Txn {
    /// Relays a response upstream without our Via.
    pub(super) async fn relay(&mut self, mut resp: SipMessage, provisional: bool) {
        let Some(status) = resp.status() else { return };
        resp.pop_via();
        if let Some(hop) = &self.up {
            hop.frame(&mut resp);
        }
        self.core.stats.relayed(status);
        let bytes = resp.to_bytes();
        if provisional {
            self.last = Some(bytes.clone());
            self.send_up(bytes).await;
        } else {
            self.finalize(status, bytes).await;
        }
    }

    /// A response of our own to the request.
    pub(super) async fn reply(&mut self, status: u16, reason: &str) {
        let tag = self.core.ids.tag();
        let bytes = self.req.reply(status, reason, Some(&tag)).to_bytes();
        self.core.stats.replied(status);
        self.finalize(status, bytes).await;
    }

    /// Sends a final response; the first one ends the transaction's
    /// forwarding and starts its lingering (Timers G/H for a non-2xx
    /// INVITE final over UDP, T4 otherwise).
    pub(super) async fn finalize(&mut self, status: u16, bytes: Bytes) {
        self.send_up(bytes.clone()).await;
        if self.final_status.is_some() {
            return;
        }
        let cfg = &self.core.cfg;
        let now = Instant::now();
        self.final_status = Some(status);
        self.last = Some(bytes);
        let udp = self.flow.transport == Transport::Udp;
        if self.invite && status >= 300 {
            self.g = udp.then_some((now + cfg.t1, cfg.t1));
            self.linger = Some(now + cfg.t1 * 64);
        } else {
            self.linger = Some(now + if udp { cfg.t4 } else { Duration::ZERO });
        }
        self.slim();
    }

    /// Drops what a lingering transaction no longer needs: at thousands
    /// of calls per second, T4 of lingering INVITE and BYE transactions
    /// would otherwise hold every request several times over. Kept: `last`
    /// (retransmissions), `up`, and the requests of branches that may
    /// still need a CANCEL or an ACK.
    fn slim(&mut self) {
        for m in [&mut self.req, &mut self.fwd] {
            m.headers.0 = Vec::new();
            m.body = Bytes::new();
        }
        self.outcomes = Vec::new();
        self.queue.clear();
        for b in &mut self.branches {
            b.slim();
        }
    }

    pub(super) async fn send_up(&self, bytes: Bytes) {
        let Some(hop) = self.up else { return };
        if let Err(e) = self.core.send(&hop, bytes).await {
            tracing::debug!(peer = %hop.addr, error = %e, "proxy: response not sent upstream");
        }
    }
}
