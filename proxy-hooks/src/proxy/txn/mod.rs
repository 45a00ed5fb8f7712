//! One server transaction and its branches, as one task (RFC 3261 16.5 to
//! 16.10 and 17.2): 100 Trying, routing, serial failover or parallel
//! fork, relaying provisional and final responses, CANCEL, the choice of
//! the best final, and the lingering that absorbs retransmissions.
//!
//! A task per transaction (not per retransmission): its timers are one
//! `sleep_until` on the earliest deadline of its branches, reset after
//! every event. The task owns its state; the receive loop reaches it only
//! through its channel (maps `servers` and `clients` in [`Core`]).
//!
//! Here: the table (bounded: 503 when full), the task and its events;
//! `fork`: starting branches; `response`: what a response does;
//! `upstream`: what goes to the caller.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::addr::{Hop, response_hop};
use super::branch::Branch;
use super::core::Core;
use super::ids::Outcome;
use super::router::{Flow, Fork, Label, Target, Verdict};
use crate::sip::{SipMessage, Transport};
use locus_schema::lock;

mod fork;
mod response;
mod upstream;

/// What reaches a transaction task.
#[derive(Debug)]
pub(crate) enum Event {
    /// A response to one of its branches (or to a branch's CANCEL). Boxed:
    /// a channel allocates its slots in blocks of 32, and a per-transaction
    /// block of whole messages cost kilobytes (page faults in the profile).
    Response(Box<SipMessage>),
    /// The request again: resend the last response.
    Retransmit,
    /// The caller's CANCEL (already answered 200).
    Cancel,
    /// The ACK for our non-2xx final.
    Ack,
}

/// How a new transaction finds its targets.
pub(crate) enum Plan {
    /// Ask the router (out-of-dialog).
    Route,
    /// Follow the request's Route set / R-URI / flow.
    Direct(Box<Target>),
}

/// Most 302 redirects followed per transaction (ping-pong guard).
const MAX_REDIRECTS: u32 = 5;
/// Event queue depth per transaction.
const QUEUE: usize = 32;

/// Starts the server transaction of `req` under `key`. An INVITE's
/// `100 Trying` leaves from the receive loop itself, before the task is
/// first scheduled, so a loaded proxy still stops the caller's
/// retransmissions at once.
pub(crate) async fn spawn(
    core: Arc<Core>,
    key: String,
    req: SipMessage,
    flow: Flow,
    plan: Plan,
    lh: u64,
    cancel: CancellationToken,
) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let admitted = {
        let mut servers = lock(&core.servers);
        let room = servers.len() < core.cfg.max_transactions;
        if room {
            servers.insert(key.clone(), tx.clone());
        }
        room
    };
    if !admitted {
        return overloaded(&core, &req, &flow).await;
    }
    core.stats.txn_started();
    let up = req
        .top_via()
        .ok()
        .and_then(|v| response_hop(&v, Some(&flow)));
    let invite = req.method() == Some("INVITE");
    let record = !req.to().is_ok_and(|t| t.tag().is_some())
        && matches!(req.method(), Some("INVITE" | "SUBSCRIBE"));
    let txn = Txn {
        core,
        tx,
        key,
        fwd: req.clone(),
        req,
        flow,
        up,
        invite,
        record,
        caller_flow: None,
        lh,
        routed: matches!(plan, Plan::Route),
        label: Label::Other,
        fork: Fork::Serial,
        queue: VecDeque::new(),
        branches: Vec::new(),
        outcomes: Vec::new(),
        failover_ok: true,
        tried: 0,
        last: None,
        final_status: None,
        cancelled: false,
        g: None,
        linger: None,
        redirects: 0,
        shutdown: cancel.clone(),
    };
    let mut txn = txn;
    if txn.invite {
        let trying = txn.req.reply(100, "Trying", None).to_bytes();
        txn.core.stats.replied(100);
        if let Some(hop) = txn.up {
            txn.core
                .send_from_loop(hop, trying.clone(), "100 Trying")
                .await;
        }
        txn.last = Some(trying);
    }
    tokio::spawn(txn.run(plan, rx));
}

/// Seconds a caller refused for a full transaction table is asked to
/// wait: about how long a finished transaction lingers (T4).
const RETRY_AFTER: &str = "5";

/// The table is full: `503` with `Retry-After` (RFC 3261 21.5.4), no
/// transaction, so a flood costs one reply each and never grows memory.
async fn overloaded(core: &Arc<Core>, req: &SipMessage, flow: &Flow) {
    core.stats.overload();
    core.stats.replied(503);
    tracing::warn!(peer = %flow.source, max = core.cfg.max_transactions, "proxy: transaction table full, 503");
    let tag = core.ids.tag();
    let mut resp = req.reply(503, "Service Unavailable", Some(&tag));
    resp.headers.push("Retry-After", RETRY_AFTER);
    if let Some(hop) = req
        .top_via()
        .ok()
        .and_then(|v| response_hop(&v, Some(flow)))
    {
        core.send_from_loop(hop, resp.to_bytes(), "503").await;
    }
}

struct Txn {
    core: Arc<Core>,
    tx: mpsc::Sender<Event>,
    key: String,
    /// The request as received (Via stamped): replies are built from it.
    req: SipMessage,
    /// The request to forward (route-processed, Max-Forwards decremented).
    fwd: SipMessage,
    flow: Flow,
    /// Where responses go.
    up: Option<Hop>,
    invite: bool,
    /// Record-Route the branches (out-of-dialog INVITE/SUBSCRIBE).
    record: bool,
    /// The caller's flow token (signed), when its side of our
    /// Record-Route must carry it ([`super::router::Router::caller_flow`]).
    caller_flow: Option<String>,
    lh: u64,
    routed: bool,
    label: Label,
    fork: Fork,
    queue: VecDeque<Target>,
    branches: Vec<Branch>,
    /// Finished branches' results (with the real response), in order.
    outcomes: Vec<(Outcome, Option<SipMessage>)>,
    /// The last branch failed in a way that allows the next (serial).
    failover_ok: bool,
    tried: usize,
    last: Option<Bytes>,
    final_status: Option<u16>,
    cancelled: bool,
    /// Timer G: retransmit a non-2xx INVITE final over UDP until the ACK.
    g: Option<(Instant, Duration)>,
    linger: Option<Instant>,
    redirects: u32,
    /// The proxy's shutdown (hands over to a release task).
    shutdown: CancellationToken,
}

impl Txn {
    async fn run(mut self, plan: Plan, mut rx: mpsc::Receiver<Event>) {
        let cancel = self.shutdown.clone();
        match plan {
            Plan::Direct(t) => self.queue.push_back(*t),
            Plan::Route => {
                // Timed here, in the real run, for the "routing decision
                // p99 < 50 us" target (issue 3): everything the router does.
                let started = std::time::Instant::now();
                let verdict = self.core.router.route(&mut self.fwd, &self.flow).await;
                if self.record && self.core.router.caller_flow(&self.fwd, &self.flow) {
                    self.caller_flow = Some(self.core.keys.token(&self.flow));
                }
                self.core.stats.route_decided(started.elapsed());
                match verdict {
                    Verdict::Reply { status, reason } => self.reply(status, &reason).await,
                    Verdict::Respond(resp) => {
                        let status = resp.status().unwrap_or(500);
                        self.core.stats.replied(status);
                        self.finalize(status, resp.to_bytes()).await;
                    }
                    Verdict::Forward {
                        targets,
                        fork,
                        label,
                    } => {
                        self.queue = targets.into();
                        self.fork = fork;
                        self.label = label;
                    }
                }
            }
        }
        // Events that came in while routing (a CANCEL, retransmissions).
        while let Ok(ev) = rx.try_recv() {
            self.on_event(ev).await;
        }
        self.advance().await;
        let far = Duration::from_secs(3600);
        loop {
            let now = Instant::now();
            if self.finished(now) {
                break;
            }
            let wake = self.next_wake().unwrap_or(now + far);
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                ev = rx.recv() => match ev {
                    Some(ev) => self.on_event(ev).await,
                    None => break,
                },
                _ = sleep_until(wake) => self.on_timer(Instant::now()).await,
            }
        }
        lock(&self.core.servers).remove(&self.key);
        {
            let mut clients = lock(&self.core.clients);
            for b in self.branches.iter().filter(|b| !b.released) {
                clients.remove(&b.id);
            }
        }
        self.core.stats.txn_ended();
    }

    fn finished(&self, now: Instant) -> bool {
        self.final_status.is_some()
            && self.linger.is_some_and(|l| now >= l)
            && self.branches.iter().all(|b| !b.alive(now))
    }

    fn next_wake(&self) -> Option<Instant> {
        let branch = self.branches.iter().filter_map(Branch::next_wake);
        let own = [self.g.map(|g| g.0), self.linger].into_iter().flatten();
        branch.chain(own).min()
    }

    async fn on_timer(&mut self, now: Instant) {
        let mut timed_out = false;
        for i in 0..self.branches.len() {
            if self.branches[i].tick(&self.core, now).await {
                self.outcomes.push((Outcome::Timeout, None));
                self.failover_ok = true;
                timed_out = true;
            }
        }
        if let Some((at, every)) = self.g
            && now >= at
        {
            let every = (every * 2).min(self.core.cfg.t2);
            self.g = Some((now + every, every));
            if let Some(b) = self.last.clone() {
                self.send_up(b).await;
            }
        }
        if timed_out {
            self.advance().await;
        }
    }

    async fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Retransmit => {
                if let Some(b) = self.last.clone() {
                    self.send_up(b).await;
                }
            }
            Event::Ack => {
                self.g = None;
                if self.final_status.is_some_and(|s| s >= 300) {
                    // Timer I (T4 on UDP, 0 on TCP), RFC 3261 17.2.1.
                    let wait = if self.flow.transport == Transport::Udp {
                        self.core.cfg.t4
                    } else {
                        Duration::ZERO
                    };
                    self.linger = Some(Instant::now() + wait);
                }
            }
            Event::Cancel => {
                if self.final_status.is_some() || self.cancelled {
                    return;
                }
                self.cancelled = true;
                self.queue.clear();
                // RFC 3261 9.1: a 2xx crossing the caller's CANCEL still
                // goes to the caller (it ACKs and BYEs it): not given up.
                self.cancel_branches(None, false).await;
                let now = Instant::now();
                for b in &mut self.branches {
                    if b.forsake(&self.core.cfg, now) {
                        self.outcomes.push((Outcome::Timeout, None));
                    }
                }
                self.advance().await;
            }
            Event::Response(resp) => self.on_response(*resp).await,
        }
    }
}
