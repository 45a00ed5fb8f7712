//! [`Branch`]: one client transaction of a forwarded request (RFC 3261
//! 17.1): UDP retransmissions (Timer A/E: T1 doubling, capped at T2 for
//! non-INVITE), the failover deadlines of [`CoreConfig`], and the CANCEL a
//! pending INVITE branch gets (sent only once it has answered, RFC 3261 9.1).
//!
//! INVITE deadlines (Kamailio's `fr_timer` / `fr_inv_timer`, RFC 3261
//! Timers B and C): with no response at all, `invite_timeout` when another
//! target is left to fail over to, Timer B (64*T1) on the last one; from
//! any provisional response on, 100 Trying included, `ring_timeout`,
//! restarted by each provisional. A branch given up (deadline passed, or
//! CANCELled because another branch won) is CANCELled as soon as it has
//! answered, and waits 64*T1 for a late final, so a late 2xx still finds
//! its transaction (which ACKs and BYEs it, see `super::release`).

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use super::addr::Hop;
use super::build::cancel_for;
use super::config::CoreConfig;
use super::core::Core;
use super::ids::Outcome;
use super::router::Target;
use crate::sip::{SipMessage, Transport};

/// The CANCEL of one branch.
#[derive(Debug)]
enum Cancel {
    /// Not asked for.
    No,
    /// Asked for before any response: sent on the first one.
    Wanted,
    /// Sent; retransmitted (UDP) at `at` until answered.
    Sent {
        bytes: Bytes,
        at: Option<Instant>,
        every: Duration,
    },
}

/// One branch.
#[derive(Debug)]
pub(crate) struct Branch {
    /// Our Via branch.
    pub(crate) id: String,
    /// Where it went.
    pub(crate) target: Target,
    /// The request as forwarded.
    pub(crate) req: SipMessage,
    bytes: Bytes,
    /// Where it went (transport as sent: a large request may have moved to TCP).
    pub(crate) hop: Hop,
    invite: bool,
    started: Instant,
    /// Any response seen.
    responded: bool,
    /// Any final response seen (later ones are retransmissions).
    pub(crate) final_seen: bool,
    /// Its result; `None` while pending.
    pub(crate) outcome: Option<Outcome>,
    retrans: Option<(Instant, Duration)>,
    deadline: Instant,
    cancel: Cancel,
    /// After we gave up on it or CANCELled it: wait for its final until then.
    linger: Option<Instant>,
    /// Given up: timed out, or CANCELled because another branch won. A
    /// 2xx from it after the caller got its final is released, not relayed.
    given_up: bool,
    /// Its 2xx was released: `super::release` owns its branch id now.
    pub(crate) released: bool,
}

impl Branch {
    /// A branch whose request was just sent.
    pub(crate) fn new(
        id: String,
        target: Target,
        req: SipMessage,
        bytes: Bytes,
        hop: Hop,
        cfg: &CoreConfig,
        last: bool,
    ) -> Branch {
        let now = Instant::now();
        let invite = req.method() == Some("INVITE");
        // Nothing to fail over to: wait as RFC 3261 would (Timer B / F).
        let wait = match (invite, last) {
            (true, true) => cfg.t1 * 64,
            (false, true) => cfg.non_invite_timeout,
            (_, false) => cfg.invite_timeout,
        };
        Branch {
            id,
            target,
            req,
            bytes,
            hop,
            invite,
            started: now,
            responded: false,
            final_seen: false,
            outcome: None,
            retrans: (hop.transport == Transport::Udp).then(|| (now + cfg.t1, cfg.t1)),
            deadline: now + wait,
            cancel: Cancel::No,
            linger: None,
            given_up: false,
            released: false,
        }
    }

    /// Whether we gave up on it (timed out, or CANCELled because another
    /// branch won).
    pub(crate) fn given_up(&self) -> bool {
        self.given_up
    }

    /// Whether the transaction must stay for this branch.
    pub(crate) fn alive(&self, now: Instant) -> bool {
        !self.final_seen && (self.outcome.is_none() || self.linger.is_some_and(|l| now < l))
    }

    /// When this branch next needs [`Branch::tick`].
    pub(crate) fn next_wake(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        if self.outcome.is_none() {
            add(self.retrans.map(|r| r.0));
            add(Some(self.deadline));
        }
        if let Cancel::Sent { at, .. } = &self.cancel
            && !self.final_seen
        {
            add(*at);
        }
        if !self.final_seen {
            add(self.linger);
        }
        t
    }

    /// Runs due timers; `true` when the branch just timed out (an outcome to count).
    pub(crate) async fn tick(&mut self, core: &Core, now: Instant) -> bool {
        let cfg = &core.cfg;
        if let Cancel::Sent {
            bytes,
            at: Some(at),
            every,
        } = &mut self.cancel
            && now >= *at
            && !self.final_seen
        {
            *every = (*every * 2).min(cfg.t2);
            *at = now + *every;
            let _ = core.send(&self.hop, bytes.clone()).await;
        }
        if self.outcome.is_some() {
            return false;
        }
        if let Some((at, every)) = self.retrans
            && now >= at
        {
            let every = if self.invite {
                every * 2
            } else {
                (every * 2).min(cfg.t2)
            };
            self.retrans = Some((now + every, every));
            if let Err(e) = core.send(&self.hop, self.bytes.clone()).await {
                tracing::debug!(peer = %self.hop.addr, error = %e, "proxy: retransmission failed");
            }
        }
        if now < self.deadline {
            return false;
        }
        tracing::debug!(peer = %self.hop.addr, sip.branch = %self.id, "proxy: branch timed out");
        self.outcome = Some(Outcome::Timeout);
        self.retrans = None;
        self.given_up = true;
        if self.invite {
            if self.responded {
                self.send_cancel(core, now).await;
            } else {
                // Silent so far: CANCEL it if it answers late, and stay
                // for its final (a late 2xx must be ACKed and BYEd).
                self.cancel = Cancel::Wanted;
                self.linger = Some(now + cfg.t1 * 64);
            }
        }
        true
    }

    /// A provisional response: stop retransmitting; INVITE: any of them,
    /// 100 Trying included, moves the deadline to `ring_timeout` (a box
    /// that said 100 is alive: only its ringing time counts now, however
    /// long its post-dial delay); non-INVITE: Timer F.
    pub(crate) async fn on_provisional(&mut self, core: &Core, now: Instant) {
        let cfg = &core.cfg;
        self.responded = true;
        if self.outcome.is_none() {
            if self.invite {
                self.retrans = None;
                if matches!(self.cancel, Cancel::No) {
                    self.deadline = now + cfg.ring_timeout;
                }
            } else {
                // RFC 3261 17.1.2.2: Proceeding retransmits every T2.
                self.retrans = self.retrans.map(|_| (now + cfg.t2, cfg.t2));
                self.deadline = self.started + cfg.non_invite_timeout;
            }
        }
        if matches!(self.cancel, Cancel::Wanted) {
            self.send_cancel(core, now).await;
        }
    }

    /// A final response (the first one): stop every timer.
    pub(crate) fn on_final(&mut self) {
        self.responded = true;
        self.final_seen = true;
        self.retrans = None;
    }

    /// CANCEL this INVITE branch (the caller cancelled, or another branch
    /// won: `give_up`): now if it has answered, else on its first
    /// response. It then has 64*T1 to send its final.
    pub(crate) async fn cancel(&mut self, core: &Core, now: Instant, give_up: bool) {
        if !self.invite || self.final_seen || !matches!(self.cancel, Cancel::No) {
            return;
        }
        self.given_up |= give_up;
        if self.responded {
            self.send_cancel(core, now).await;
        } else {
            self.cancel = Cancel::Wanted;
        }
        let wait = core.cfg.t1 * 64;
        self.deadline = self.deadline.min(now + wait);
    }

    /// The caller CANCELled and this INVITE branch never answered: it is
    /// over now, so the caller gets its 487 without waiting for Timer B
    /// (Kamailio's `cancel_b_method` 0). It gets the CANCEL if it answers
    /// late (already wanted by [`Branch::cancel`]); a late 2xx is released.
    /// `true` when it just ended (an outcome to count).
    pub(crate) fn forsake(&mut self, cfg: &CoreConfig, now: Instant) -> bool {
        if !self.invite || self.responded || self.outcome.is_some() {
            return false;
        }
        self.outcome = Some(Outcome::Timeout);
        self.retrans = None;
        self.given_up = true;
        self.linger = Some(now + cfg.t1 * 64);
        true
    }

    async fn send_cancel(&mut self, core: &Core, now: Instant) {
        let bytes = cancel_for(&self.req).to_bytes();
        let t1 = core.cfg.t1;
        let at = (self.hop.transport == Transport::Udp).then(|| now + t1);
        self.cancel = Cancel::Sent {
            bytes: bytes.clone(),
            at,
            every: t1,
        };
        self.linger = Some(now + t1 * 64);
        if let Err(e) = core.send(&self.hop, bytes).await {
            tracing::debug!(peer = %self.hop.addr, error = %e, "proxy: CANCEL not sent");
        }
    }

    /// The CANCEL was answered: stop retransmitting it.
    pub(crate) fn cancel_answered(&mut self) {
        if let Cancel::Sent { at, .. } = &mut self.cancel {
            *at = None;
        }
    }

    /// Forgets the request of a branch answered 2xx: nothing more is sent
    /// on it (a retransmitted 2xx is relayed, never ACKed here).
    pub(crate) fn slim(&mut self) {
        if self.final_seen && matches!(self.outcome, Some(Outcome::Final(s)) if s < 300) {
            self.req.headers.0 = Vec::new();
            self.req.body = Bytes::new();
            self.bytes = Bytes::new();
        }
    }

    /// Sends `bytes` (an ACK) to this branch's hop.
    pub(crate) async fn send(&self, core: &Core, bytes: Bytes) {
        if let Err(e) = core.send(&self.hop, bytes).await {
            tracing::debug!(peer = %self.hop.addr, error = %e, "proxy: ACK not sent");
        }
    }
}
