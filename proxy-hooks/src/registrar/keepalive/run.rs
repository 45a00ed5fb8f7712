//! The keepalive loop: sleeps until the next ping is due (or something
//! changed), sends what is due from the flow's own socket or connection,
//! and hands reachability changes to the registrar.

use std::sync::Arc;

use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Reachability;
use super::book::{Keepalive, Ping};
use crate::sip::Transport;

impl Keepalive {
    /// Pings until `cancel` fires; `sink` writes reachability down.
    pub async fn run(&self, sink: Arc<dyn Reachability>, cancel: CancellationToken) {
        if !self.enabled() {
            return;
        }
        let inner = &self.inner;
        loop {
            let wake = inner
                .next_due()
                .unwrap_or_else(|| Instant::now() + inner.cfg.interval);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                _ = inner.wake.notified() => {}
                _ = sleep_until(wake) => {}
            }
            loop {
                let now = Instant::now();
                let pings = inner.due_pings(now, locus_schema::now_ms());
                let more = !pings.is_empty();
                for ping in pings {
                    self.send(ping).await;
                }
                for fate in inner.take_fates() {
                    sink.set_reachable(fate).await;
                }
                if !more || cancel.is_cancelled() {
                    break;
                }
            }
        }
    }

    /// Sends one ping: UDP from the socket the phone registered on, TCP on
    /// its connection only (a new one would not cross its NAT).
    async fn send(&self, ping: Ping) {
        let inner = &self.inner;
        let Ping { flow, bytes } = ping;
        let sent = match (flow.transport, flow.conn) {
            (Transport::Udp, _) => {
                inner
                    .transport
                    .send_from(Some(flow.local), flow.source, Transport::Udp, bytes, None)
                    .await
            }
            (Transport::Tcp, Some(conn)) => inner.transport.send_on(conn, flow.source, bytes),
            (Transport::Tcp, None) => return,
        };
        match sent {
            Ok(()) => {
                inner.stats.sent.inc();
            }
            Err(e) => {
                inner.stats.send_errors.inc();
                tracing::debug!(peer = %flow.source, error = %e, "keepalive: not sent");
                if flow.transport == Transport::Tcp {
                    self.lost(&flow);
                }
            }
        }
    }
}
