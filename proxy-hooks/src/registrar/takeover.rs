//! Taking over a gone proxy's phones (`cluster.rs` decides when): its UDP
//! bindings become ours, its TCP ones unreachable.

use std::net::SocketAddr;

use locus_schema::now_ms;

use super::{Registrar, contact_key, rebuilt_flow};
use crate::sip::{Transport, Uri};

/// Most `reg:` keys read in one takeover.
const MAX_USERS: usize = 1_000_000;

impl Registrar {
    /// Our UDP listeners: a taken-over phone is sent to from the one its
    /// old proxy's socket named (a floating address now bound here), else
    /// from the first of its family.
    pub fn with_listeners(mut self, udp: Vec<SocketAddr>) -> Self {
        self.listeners = udp;
        self
    }

    /// Makes the live UDP bindings owned by proxy `gone` ours (owner,
    /// socket, flow token; pinged from now on) and marks its TCP ones
    /// unreachable. Returns (taken, marked unreachable).
    pub async fn take_over(&self, gone: &str) -> (usize, usize) {
        let all = match self.store.all_bindings(MAX_USERS).await {
            Ok(a) => a,
            Err(e) => {
                self.store_failed("takeover scan", gone, &e);
                return (0, 0);
            }
        };
        let now = now_ms();
        let (mut moved, mut lost) = (0, 0);
        for (domain, user, mut b) in all.into_iter().filter(|(_, _, b)| b.proxy == gone) {
            let udp = b.transport.eq_ignore_ascii_case("udp");
            let flow = rebuilt_flow(&b).filter(|f| udp && f.transport == Transport::Udp);
            match flow {
                Some(mut flow) => {
                    flow.local = self.listener_for(&b.socket, flow.source);
                    b.proxy = self.id.clone();
                    b.socket = self.own.socket_uri(&flow).to_string();
                    b.flow = self.keys.token(&flow);
                    self.flows.save(&domain, &user, b.clone(), flow, now);
                    if let (Some(ka), Ok(uri)) = (&self.keepalive, Uri::parse(&b.contact)) {
                        let key = contact_key(&domain, &user, &b.contact);
                        ka.track(flow, key, uri, self.own.sent_by(&flow), b.expires_ms);
                    }
                    moved += 1;
                }
                None => {
                    b.unreachable = true;
                    lost += 1;
                }
            }
            if let Err(e) = self.store.put_binding(&domain, &user, &b).await {
                self.store_failed("takeover write", &format!("{user}@{domain}"), &e);
            }
        }
        (moved, lost)
    }

    /// The listener to send to `phone` from: the one at the gone proxy's
    /// socket address when bound here, else the first of the family.
    fn listener_for(&self, socket: &str, phone: SocketAddr) -> SocketAddr {
        let old = Uri::parse(socket).ok().and_then(|u| {
            let ip = u.host.parse().ok()?;
            Some(SocketAddr::new(ip, u.port.unwrap_or(5060)))
        });
        let family = |a: &&SocketAddr| a.is_ipv4() == phone.is_ipv4();
        old.filter(|o| self.listeners.contains(o))
            .or_else(|| self.listeners.iter().find(family).copied())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}
