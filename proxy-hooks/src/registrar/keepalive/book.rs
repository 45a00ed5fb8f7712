//! [`Keepalive`]: the book of pinged flows (their contacts, due times,
//! outstanding pings) and what changes it: registrations, answers, pongs
//! and closed connections.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{ContactKey, Fate, KeepaliveConfig, KeepaliveMethod, KeepaliveStats};
use crate::proxy::Flow;
use crate::sip::{ConnEvent, ConnId, SipMessage, SipTransport, Transport, Uri};

/// The keepalives of one proxy; cheap to clone (one shared state).
#[derive(Clone)]
pub struct Keepalive {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) cfg: KeepaliveConfig,
    pub(super) transport: SipTransport,
    /// Branches of our OPTIONS start with it.
    prefix: String,
    salt: std::collections::hash_map::RandomState,
    book: Mutex<Book>,
    pub(super) stats: KeepaliveStats,
    /// Something for the run loop: a new first due time, or fates.
    pub(super) wake: Notify,
}

/// One pinged flow.
struct Entry {
    /// Its contacts and when each expires (ms since the epoch).
    contacts: HashMap<ContactKey, u64>,
    /// Request-URI of the OPTIONS: the latest contact saved on it.
    uri: Uri,
    /// Via sent-by: how the phone knows us (`host:port`).
    sent_by: String,
    /// Key of its slot in [`Book::due`].
    due: (Instant, u64),
    /// The branch of the outstanding OPTIONS.
    branch: Option<String>,
    /// A ping is outstanding.
    pending: bool,
    misses: u32,
    reachable: bool,
    cseq: u32,
}

#[derive(Default)]
struct Book {
    flows: HashMap<Flow, Entry>,
    /// Next ping of each flow, by due time (then a sequence number).
    due: BTreeMap<(Instant, u64), Flow>,
    /// Outstanding OPTIONS by branch.
    branches: HashMap<String, Flow>,
    /// TCP flows by connection.
    conns: HashMap<ConnId, Flow>,
    /// The flow each contact is on.
    by_contact: HashMap<ContactKey, Flow>,
    seq: u64,
    unreachable: i64,
    /// Reachability changes the run loop has yet to write down.
    fates: Vec<Fate>,
}

/// One ping to send.
pub(super) struct Ping {
    pub(super) flow: Flow,
    pub(super) bytes: Bytes,
}

/// What to ping over UDP for CRLF keepalives, and over TCP for both.
const CRLFCRLF: &[u8] = b"\r\n\r\n";
/// Pings handed out per wake-up (the rest follow at once): keeps each
/// hold of the book short with 100,000 flows due together.
const BATCH: usize = 512;

impl Keepalive {
    /// Keepalives sending through `transport`; start them with
    /// [`Keepalive::run`] and feed them answers ([`Keepalive::on_response`])
    /// and TCP events ([`Keepalive::watch`]).
    pub fn new(cfg: KeepaliveConfig, transport: SipTransport) -> Keepalive {
        let salt = std::collections::hash_map::RandomState::new();
        let tag = salt.hash_one(std::process::id());
        Keepalive {
            inner: Arc::new(Inner {
                cfg,
                transport,
                prefix: format!("z9hG4bK-lk{tag:016x}-"),
                salt,
                book: Mutex::new(Book::default()),
                stats: KeepaliveStats::default(),
                wake: Notify::new(),
            }),
        }
    }

    /// Counters and gauges.
    pub fn stats(&self) -> &KeepaliveStats {
        &self.inner.stats
    }

    /// Time between two pings of one flow.
    pub fn interval(&self) -> std::time::Duration {
        self.inner.cfg.interval
    }

    /// Whether keepalives are sent at all.
    pub fn enabled(&self) -> bool {
        self.inner.cfg.method != KeepaliveMethod::Off
    }

    /// Pings `flow` from now on for contact `key` (Request-URI `uri`)
    /// until `expires_ms`; a registration also revives it. A contact that
    /// moved to another flow leaves its old one.
    pub fn track(&self, flow: Flow, key: ContactKey, uri: Uri, sent_by: String, expires_ms: u64) {
        if !self.enabled() || (flow.transport == Transport::Tcp && flow.conn.is_none()) {
            return;
        }
        let inner = &self.inner;
        let mut guard = inner.lock();
        let book = &mut *guard;
        if let Some(old) = book.by_contact.get(&key).copied()
            && old != flow
        {
            book.drop_contact(&old, &key, &inner.stats);
        }
        book.by_contact.insert(key.clone(), flow);
        if let Some(e) = book.flows.get_mut(&flow) {
            e.contacts.insert(key, expires_ms);
            e.uri = uri;
            e.sent_by = sent_by;
            e.misses = 0;
            if !e.reachable {
                // The registrar wrote the binding anew, reachable.
                e.reachable = true;
                book.unreachable -= 1;
                inner.stats.unreachable.set(book.unreachable);
            }
            return;
        }
        book.seq += 1;
        let span = u64::try_from(inner.cfg.interval.as_millis()).unwrap_or(u64::MAX);
        let jitter = inner.salt.hash_one((flow, book.seq)) % span.max(1);
        let due = (
            Instant::now() + std::time::Duration::from_millis(jitter),
            book.seq,
        );
        book.due.insert(due, flow);
        if let Some(c) = flow.conn {
            book.conns.insert(c, flow);
        }
        let mut contacts = HashMap::new();
        contacts.insert(key, expires_ms);
        book.flows.insert(
            flow,
            Entry {
                contacts,
                uri,
                sent_by,
                due,
                branch: None,
                pending: false,
                misses: 0,
                reachable: true,
                cseq: 0,
            },
        );
        inner
            .stats
            .flows
            .set(i64::try_from(book.flows.len()).unwrap_or(i64::MAX));
        drop(guard);
        inner.wake.notify_one();
    }

    /// Stops pinging for contact `key` (unregistered, or removed).
    pub fn untrack(&self, key: &ContactKey) {
        let inner = &self.inner;
        let mut book = inner.lock();
        if let Some(flow) = book.by_contact.get(key).copied() {
            book.drop_contact(&flow, key, &inner.stats);
        }
    }

    /// Feeds one inbound response; true when it answers one of our
    /// OPTIONS (consumed: the proxy must not relay it). It counts only
    /// from the flow it was sent over.
    pub fn on_response(&self, msg: &SipMessage, from: &Flow) -> bool {
        let branch = match crate::sip::probe::answer_to(msg, &self.inner.prefix) {
            None => return false,
            Some(None) => return true,
            Some(Some((_, branch))) => branch,
        };
        let inner = &self.inner;
        let mut book = inner.lock();
        match book.branches.get(&branch).copied() {
            Some(flow) if flow.source == from.source && flow.transport == from.transport => {
                book.branches.remove(&branch);
                book.answered(&flow, &inner.stats);
            }
            _ => tracing::debug!(peer = %from.source, "keepalive: late or foreign answer absorbed"),
        }
        let woke = !book.fates.is_empty();
        drop(book);
        if woke {
            inner.wake.notify_one();
        }
        true
    }

    /// Makes `transport` report pongs and closed connections here.
    pub fn watch(&self, transport: &SipTransport) {
        let me = self.clone();
        transport.watch_conns(Box::new(move |ev| me.on_conn(ev)));
    }

    fn on_conn(&self, ev: ConnEvent) {
        let inner = &self.inner;
        let mut guard = inner.lock();
        let book = &mut *guard;
        match ev {
            ConnEvent::Pong(id) => {
                if let Some(flow) = book.conns.get(&id).copied() {
                    book.answered(&flow, &inner.stats);
                }
            }
            ConnEvent::Closed(id) => {
                if let Some(flow) = book.conns.get(&id).copied() {
                    book.lost(&flow, &inner.stats);
                }
            }
        }
        let woke = !book.fates.is_empty();
        drop(guard);
        if woke {
            inner.wake.notify_one();
        }
    }

    /// The flow's bindings are unreachable at once (a TCP send failed:
    /// the connection is gone).
    pub(super) fn lost(&self, flow: &Flow) {
        let inner = &self.inner;
        inner.lock().lost(flow, &inner.stats);
        inner.wake.notify_one();
    }

    /// Whether the phone on `flow` answers (`None`: not pinged).
    pub fn reachable(&self, flow: &Flow) -> Option<bool> {
        self.inner.lock().flows.get(flow).map(|e| e.reachable)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Book> {
        // A poisoned book is still a usable book.
        locus_schema::lock(&self.book)
    }

    /// The earliest due time, if any flow is pinged.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.lock().due.keys().next().map(|(t, _)| *t)
    }

    /// Reachability changes to write down.
    pub(super) fn take_fates(&self) -> Vec<Fate> {
        std::mem::take(&mut self.lock().fates)
    }

    /// Up to [`BATCH`] pings due at `now`: counts a miss for each flow
    /// whose last ping is unanswered, forgets expired contacts and empty
    /// flows, and books the next ping an interval later.
    pub(super) fn due_pings(&self, now: Instant, now_ms: u64) -> Vec<Ping> {
        let mut guard = self.lock();
        let book = &mut *guard;
        let mut out = Vec::new();
        while out.len() < BATCH {
            let Some((&key, &flow)) = book.due.first_key_value() else {
                break;
            };
            if key.0 > now {
                break;
            }
            book.due.remove(&key);
            let Some(e) = book.flows.get_mut(&flow) else {
                continue;
            };
            e.contacts.retain(|_, exp| *exp > now_ms);
            if e.contacts.is_empty() {
                book.forget(&flow, &self.stats);
                continue;
            }
            if e.pending {
                self.stats.missed.inc();
                e.misses = e.misses.saturating_add(1);
                if e.reachable && e.misses >= self.cfg.fail_after {
                    e.reachable = false;
                    book.unreachable += 1;
                    self.stats.unreachable.set(book.unreachable);
                    self.stats.went_unreachable.inc();
                    tracing::info!(peer = %flow.source, misses = e.misses, "keepalive: phone unreachable");
                    book.fates.push(Fate {
                        flow,
                        contacts: e.contacts.keys().cloned().collect(),
                        reachable: false,
                    });
                }
            }
            book.seq += 1;
            let next = (key.0 + self.cfg.interval).max(now + self.cfg.interval / 2);
            e.due = (next, book.seq);
            book.due.insert(e.due, flow);
            let bytes = match (self.cfg.method, flow.transport) {
                (KeepaliveMethod::Options, transport) => {
                    if let Some(old) = e.branch.take() {
                        book.branches.remove(&old);
                    }
                    let branch = format!("{}{:x}", self.prefix, book.seq);
                    e.cseq = e.cseq.wrapping_add(1).max(1);
                    let msg = crate::sip::probe::options(
                        &e.uri,
                        &e.sent_by,
                        transport,
                        &branch,
                        e.cseq,
                        "locus-proxy keepalive",
                    );
                    book.branches.insert(branch.clone(), flow);
                    e.branch = Some(branch);
                    e.pending = true;
                    msg.to_bytes()
                }
                (_, Transport::Tcp) => {
                    e.pending = true;
                    Bytes::from_static(CRLFCRLF)
                }
                // Nothing answers a CRLF over UDP: it only holds the pinhole.
                (_, Transport::Udp) => Bytes::from_static(CRLFCRLF),
            };
            out.push(Ping { flow, bytes });
        }
        out
    }
}

impl Book {
    /// An answer (or pong) on `flow`: no ping outstanding, no misses;
    /// reachable again if it was not.
    fn answered(&mut self, flow: &Flow, stats: &KeepaliveStats) {
        let Some(e) = self.flows.get_mut(flow) else {
            return;
        };
        stats.answered.inc();
        e.pending = false;
        e.misses = 0;
        if !e.reachable {
            e.reachable = true;
            self.unreachable -= 1;
            stats.unreachable.set(self.unreachable);
            stats.revived.inc();
            tracing::info!(peer = %flow.source, "keepalive: phone answers again");
            self.fates.push(Fate {
                flow: *flow,
                contacts: e.contacts.keys().cloned().collect(),
                reachable: true,
            });
        }
    }

    /// `flow` is gone for good (its TCP connection closed): its bindings
    /// are unreachable until the phone registers again, and it is no
    /// longer pinged.
    fn lost(&mut self, flow: &Flow, stats: &KeepaliveStats) {
        let Some(e) = self.flows.get(flow) else {
            return;
        };
        if e.reachable {
            stats.went_unreachable.inc();
            tracing::info!(peer = %flow.source, "keepalive: connection closed, phone unreachable");
            self.fates.push(Fate {
                flow: *flow,
                contacts: e.contacts.keys().cloned().collect(),
                reachable: false,
            });
        }
        self.forget(flow, stats);
    }

    /// Removes contact `key` from `flow`, and the flow when it was its last.
    fn drop_contact(&mut self, flow: &Flow, key: &ContactKey, stats: &KeepaliveStats) {
        if self.by_contact.get(key) == Some(flow) {
            self.by_contact.remove(key);
        }
        let empty = self.flows.get_mut(flow).is_some_and(|e| {
            e.contacts.remove(key);
            e.contacts.is_empty()
        });
        if empty {
            self.forget(flow, stats);
        }
    }

    /// Removes `flow` and everything pointing at it.
    fn forget(&mut self, flow: &Flow, stats: &KeepaliveStats) {
        let Some(e) = self.flows.remove(flow) else {
            return;
        };
        self.due.remove(&e.due);
        if let Some(b) = &e.branch {
            self.branches.remove(b);
        }
        if let Some(c) = flow.conn {
            self.conns.remove(&c);
        }
        for k in e.contacts.keys() {
            if self.by_contact.get(k) == Some(flow) {
                self.by_contact.remove(k);
            }
        }
        if !e.reachable {
            self.unreachable -= 1;
            stats.unreachable.set(self.unreachable);
        }
        stats
            .flows
            .set(i64::try_from(self.flows.len()).unwrap_or(i64::MAX));
    }
}
