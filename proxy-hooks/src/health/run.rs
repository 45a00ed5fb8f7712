//! The probe loop: every `interval` an OPTIONS to each target without one
//! outstanding; outstanding probes past `timeout` fail. Sends run
//! concurrently, each bounded by `timeout`, so one black-holed TCP connect
//! does not delay the others.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use locus_schema::NodeId;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::Health;
use super::book::Inner;
use crate::sip::Transport;

impl Health {
    /// Probes until `cancel` fires.
    pub async fn run(&self, cancel: CancellationToken) {
        let interval = self.inner.cfg.interval;
        let mut next = Instant::now();
        loop {
            let wake = self.inner.earliest_deadline().map_or(next, |d| d.min(next));
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return,
                // New targets: probe them at once (this round also probes
                // the others without an outstanding probe; harmless).
                _ = self.inner.added.notified() => next = Instant::now(),
                _ = sleep_until(wake) => {}
            }
            let now = Instant::now();
            self.inner.expire(now);
            if now >= next {
                self.round(now).await;
                next += interval;
                if next <= now {
                    // Fell behind (slow sends, paused runtime): skip, do not burst.
                    next = now + interval;
                }
            }
        }
    }

    /// Sends one probe to every target that has none outstanding.
    async fn round(&self, now: Instant) {
        let inner = &self.inner;
        let deadline = now + inner.cfg.timeout;
        let mut sends = Vec::new();
        {
            let mut book = inner.lock();
            let book = &mut *book;
            for (id, t) in book.nodes.iter_mut().filter(|(_, t)| t.pending.is_none()) {
                book.seq += 1;
                t.cseq = t.cseq.wrapping_add(1).max(1);
                let local = inner.local_for(t.target.addr, t.target.transport);
                let Some(local) = local else {
                    sends.push((id.clone(), None));
                    continue;
                };
                let branch = format!("{}{:x}", inner.prefix, book.seq);
                let bytes = crate::sip::probe::options(
                    &t.target.uri,
                    &local.to_string(),
                    t.target.transport,
                    &branch,
                    t.cseq,
                    "locus-proxy health",
                )
                .to_bytes();
                t.pending = Some(branch.clone());
                book.pending.insert(branch, (id.clone(), deadline));
                sends.push((id.clone(), Some((t.target.addr, t.target.transport, bytes))));
            }
        }
        let futs = sends
            .into_iter()
            .map(|(id, send)| async move { (id, self.send(send).await) });
        for (id, res) in futures::future::join_all(futs).await {
            if let Err(why) = res {
                inner.stats.send_errors.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(node.id = %id, error = %why, "health: probe not sent");
                let mut book = inner.lock();
                if let Some(b) = book.nodes.get(&id).and_then(|t| t.pending.clone()) {
                    book.pending.remove(&b);
                }
                inner.result(&mut book, &id, false, &why);
            }
        }
    }

    async fn send(&self, send: Option<(SocketAddr, Transport, Bytes)>) -> Result<(), String> {
        let Some((addr, transport, bytes)) = send else {
            return Err("no listener for the target's transport and family".into());
        };
        let inner = &self.inner;
        match timeout(
            inner.cfg.timeout,
            inner.transport.send(addr, transport, bytes, None),
        )
        .await
        {
            Ok(Ok(())) => {
                inner.stats.sent.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("send timed out".into()),
        }
    }
}

impl Inner {
    fn earliest_deadline(&self) -> Option<Instant> {
        self.lock().pending.values().map(|(_, d)| *d).min()
    }

    /// Fails every outstanding probe whose deadline has passed.
    fn expire(&self, now: Instant) {
        let mut book = self.lock();
        let due: Vec<(String, NodeId)> = book
            .pending
            .iter()
            .filter(|(_, (_, d))| *d <= now)
            .map(|(b, (id, _))| (b.clone(), id.clone()))
            .collect();
        for (branch, id) in due {
            book.pending.remove(&branch);
            self.stats.timeouts.fetch_add(1, Ordering::Relaxed);
            self.result(&mut book, &id, false, "timeout");
        }
    }

    /// The listener address probes to `addr` leave from (and Via names).
    fn local_for(&self, addr: SocketAddr, transport: Transport) -> Option<SocketAddr> {
        let same = |a: &SocketAddr| a.is_ipv4() == addr.is_ipv4();
        match transport {
            Transport::Udp => self.transport.udp_addrs().into_iter().find(same),
            Transport::Tcp => self.transport.tcp_addrs().into_iter().find(same),
        }
    }
}
