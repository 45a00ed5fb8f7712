//! The registrar half of the farm router: the proxies as the farm's
//! location service (DESIGN.md, routing rules 2 and 7; `docs/location.md`).
//!
//! FreeSWITCH authenticates and stores REGISTERs; the proxy only adds its
//! `Path` on the way in and mirrors every binding a box accepted (its 200
//! OK) into the store's `reg:{domain}:{user}`, so any proxy can deliver a
//! call from any box to a phone registered through any box. A binding is
//! owned by the proxy that holds the phone's flow: other proxies route to
//! the phone through it.
//!
//! * [`config`]: the settings, [`RegistrarConfig`], and [`OwnAddr`] (how we name ourselves).
//! * `contact`: what a 2xx means (saves, removals, expiry).
//! * `flows`: this process's own bindings with their flows.
//! * [`keepalive`]: pings toward the phones whose flows we hold; dead ones
//!   are marked unreachable.
//! * `mid`: mid-registrar mode (refreshes answered here, long box expiry).
//! * `nat`: whether a phone is behind a NAT.
//! * `outbound`: RFC 5626 `+sip.instance`/`reg-id`: one flow per instance.
//! * `takeover`: a gone proxy's phones become ours (`cluster.rs`).
//! * `unreg`: an unregister reaches every box holding the user.
//! * [`stats`]: the counters, [`RegistrarStats`].

use std::sync::Arc;

use async_trait::async_trait;
use locus_schema::{Binding, LocationStore};

use crate::proxy::keys::unverified_flow;
use crate::proxy::{Dest, Flow, FlowKeys, Location, Target};
use crate::routing::sync::FarmSync;
use crate::sip::{SipMessage, Transport, Uri};

pub mod config;
mod contact;
mod flows;
pub mod keepalive;
mod mid;
mod nat;
mod outbound;
pub mod stats;
mod takeover;
mod unreg;

pub use config::{OwnAddr, RegistrarConfig, RegistrarError, RegistrarMode};
pub use keepalive::{Keepalive, KeepaliveConfig, KeepaliveMethod, KeepaliveStats};
pub use stats::RegistrarStats;

use contact::Change;
use flows::OwnFlows;
use keepalive::{ContactKey, Fate, Reachability};

/// Mirrors REGISTERs into the store and answers rule 7 lookups.
pub struct Registrar {
    store: Arc<dyn LocationStore>,
    cfg: RegistrarConfig,
    id: String,
    own: OwnAddr,
    flows: OwnFlows,
    stats: Arc<RegistrarStats>,
    /// Signs the flow token in our Path (the proxy core's keys).
    keys: FlowKeys,
    /// The farm view: which other boxes hold a user's registrations.
    farm: Option<Arc<FarmSync>>,
    /// Pings the phones whose flows we hold.
    keepalive: Option<Keepalive>,
    /// Mid mode: when each box-side binding lapses.
    leases: mid::BoxLeases,
    /// Our UDP listeners (takeover).
    listeners: Vec<std::net::SocketAddr>,
}

use locus_schema::now_ms;

fn transport_word(t: Transport) -> &'static str {
    match t {
        Transport::Udp => "udp",
        Transport::Tcp => "tcp",
    }
}

/// Adds `path` to `Supported` unless listed.
fn support_path(req: &mut SipMessage) {
    let listed = req
        .headers
        .get_all("Supported")
        .iter()
        .any(|t| t.eq_ignore_ascii_case("path"));
    if listed {
        return;
    }
    match req.headers.get("Supported").map(str::to_owned) {
        Some(first) if !first.trim().is_empty() => {
            req.headers.set("Supported", &format!("{first}, path"))
        }
        _ => req.headers.set("Supported", "path"),
    }
}

impl Registrar {
    /// A registrar writing through `store` as proxy `id`.
    pub fn new(
        store: Arc<dyn LocationStore>,
        cfg: RegistrarConfig,
        id: String,
        own: OwnAddr,
    ) -> Self {
        Registrar {
            store,
            cfg,
            id,
            own,
            flows: OwnFlows::default(),
            stats: Arc::new(RegistrarStats::default()),
            keys: FlowKeys::random(),
            farm: None,
            keepalive: None,
            leases: mid::BoxLeases::default(),
            listeners: Vec::new(),
        }
    }

    /// Pings the phones registered through us with `keepalive` (run it
    /// with this registrar as its [`Reachability`]).
    pub fn with_keepalive(mut self, keepalive: Keepalive) -> Self {
        self.keepalive = Some(keepalive);
        self
    }

    /// Signs Path flow tokens with `keys` (the same as the proxy core's,
    /// which checks them when the Path comes back as a Route).
    pub fn with_keys(mut self, keys: FlowKeys) -> Self {
        self.keys = keys;
        self
    }

    /// Reads the farm from `sync`, so that an unregister also reaches the
    /// other boxes holding the user's registrations (`{id}:unreg`).
    pub fn with_farm(mut self, sync: Arc<FarmSync>) -> Self {
        self.farm = Some(sync);
        self
    }

    /// The counters (register them with [`RegistrarStats::register`]).
    pub fn stats(&self) -> &Arc<RegistrarStats> {
        &self.stats
    }

    /// Sets the binding gauges from this process's own bindings (at each
    /// `/metrics` scrape: one pass over them).
    pub fn refresh_gauges(&self) {
        let (n, nat, dead) = self.flows.counts(now_ms());
        let g = |v: usize| i64::try_from(v).unwrap_or(i64::MAX);
        self.stats.bindings.set(g(n));
        self.stats.natted.set(g(nat));
        self.stats.unreachable.set(g(dead));
    }

    fn store_failed(&self, what: &'static str, aor: &str, e: &dyn std::fmt::Display) {
        self.stats.store_errors.inc();
        tracing::warn!(aor, op = what, error = %e, "registrar store call failed");
    }

    /// The binding mirrored for one saved contact.
    fn binding(
        &self,
        req: &SipMessage,
        flow: &Flow,
        target: &Target,
        contact: &Uri,
        expires: u32,
    ) -> Binding {
        let ours = self.own.path_value(flow, &self.keys);
        // Only Path values the farm router let through (a peer's) remain
        // besides ours: a phone's own are removed before forwarding.
        let path = req
            .headers
            .get_all("Path")
            .into_iter()
            .filter(|p| *p != ours)
            .map(str::to_owned)
            .collect();
        let lifetime = u64::from(expires) * 1000;
        let grace = u64::try_from(self.cfg.grace.as_millis()).unwrap_or(u64::MAX);
        let (instance, reg_id) = outbound::ids(req, contact);
        Binding {
            contact: contact.to_string(),
            received: flow.source.to_string(),
            transport: transport_word(flow.transport).into(),
            proxy: self.id.clone(),
            socket: self.own.socket_uri(flow).to_string(),
            flow: self.keys.token(flow),
            path,
            expires_ms: now_ms().saturating_add(lifetime).saturating_add(grace),
            user_agent: req.headers.get("User-Agent").map(str::to_owned),
            node: target.node.clone(),
            nat: nat::behind_nat(req, flow, contact),
            unreachable: false,
            instance,
            reg_id,
            call_id: req.call_id().unwrap_or_default().to_owned(),
            cseq: req.cseq().map(|(n, _)| n).unwrap_or_default(),
        }
    }

    /// One store binding as a branch: over our own flow, or through the
    /// proxy that owns it. `None` (logged) when it cannot be routed.
    fn target(&self, domain: &str, user: &str, b: Binding, now: u64) -> Option<Target> {
        let ruri = match Uri::parse(&b.contact) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(contact = b.contact, error = %e, "unroutable binding contact");
                return None;
            }
        };
        if b.proxy == self.id {
            let flow = self
                .flows
                .flow(domain, user, &b.contact, now)
                .or_else(|| rebuilt_flow(&b))?;
            return Some(Target {
                dest: Dest::Flow(flow),
                ruri: Some(ruri),
                node: None,
                route: b.path,
            });
        }
        let socket = match Uri::parse(&b.socket) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(proxy = b.proxy, socket = b.socket, error = %e, "unroutable owner socket");
                return None;
            }
        };
        let mut route = vec![config::route_through(&socket, &b.flow)];
        route.extend(b.path);
        Some(Target {
            dest: Dest::Uri(socket),
            ruri: Some(ruri),
            node: None,
            route,
        })
    }
}

impl Registrar {
    /// Pings the phone of a saved binding from now on. Only phones that
    /// reached us directly: one behind another proxy (a Path of its own)
    /// is that proxy's to keep alive.
    fn track(&self, flow: &Flow, domain: &str, user: &str, b: &Binding, contact: &Uri) {
        let Some(ka) = &self.keepalive else { return };
        let key = contact_key(domain, user, &b.contact);
        if b.path.is_empty() {
            ka.track(
                *flow,
                key,
                contact.clone(),
                self.own.sent_by(flow),
                b.expires_ms,
            );
        } else {
            ka.untrack(&key);
        }
    }

    /// Stops pinging, and forgets the box leases of, the contacts
    /// `change` removes.
    fn untrack(&self, domain: &str, user: &str, change: &Change) {
        let gone: Vec<ContactKey> = match change {
            Change::Save { .. } => return,
            Change::Remove(c) => vec![contact_key(domain, user, &c.to_string())],
            Change::RemoveAll => self
                .flows
                .live(domain, user, now_ms())
                .into_iter()
                .map(|b| contact_key(domain, user, &b.contact))
                .collect(),
        };
        for k in &gone {
            self.leases.remove(k);
            if let Some(ka) = &self.keepalive {
                ka.untrack(k);
            }
        }
    }
}

fn contact_key(domain: &str, user: &str, contact: &str) -> ContactKey {
    ContactKey {
        domain: domain.to_lowercase(),
        user: user.to_lowercase(),
        contact: contact.to_owned(),
    }
}

#[async_trait]
impl Reachability for Registrar {
    async fn set_reachable(&self, fate: Fate) {
        for k in fate.contacts {
            let marked =
                self.flows
                    .mark(&k.domain, &k.user, &k.contact, &fate.flow, !fate.reachable);
            let Some(b) = marked else { continue };
            let aor = format!("{}@{}", k.user, k.domain);
            tracing::info!(
                aor,
                contact = k.contact,
                reachable = fate.reachable,
                "binding reachability"
            );
            if let Err(e) = self.store.put_binding(&k.domain, &k.user, &b).await {
                self.store_failed("write", &aor, &e);
            }
        }
    }
}

impl Registrar {
    /// Mirrors what a 2xx to a REGISTER accepted (saves, removals).
    async fn mirror(&self, req: &SipMessage, flow: &Flow, target: &Target, resp: &SipMessage) {
        let Ok(to) = req.to() else {
            tracing::debug!(peer = %flow.source, "REGISTER without a usable To; not mirrored");
            return;
        };
        let (Some(user), domain) = (to.uri.user_name(), to.uri.host.as_str()) else {
            tracing::debug!(peer = %flow.source, "REGISTER To without a user; not mirrored");
            return;
        };
        let aor = format!("{user}@{domain}");
        let max = u32::try_from(self.cfg.max_expires.as_secs()).unwrap_or(u32::MAX);
        let changes = match contact::plan(req, resp, max) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(aor, peer = %flow.source, error = %e, "unreadable REGISTER contacts");
                return;
            }
        };
        for change in &changes {
            self.unregister_elsewhere(req, target, domain, user, change)
                .await;
        }
        for change in changes {
            self.untrack(domain, user, &change);
            let res = match &change {
                Change::RemoveAll => {
                    self.flows.remove_all(domain, user);
                    self.store.remove_bindings(domain, user).await
                }
                Change::Remove(c) => {
                    let c = c.to_string();
                    self.flows.remove(domain, user, &c);
                    self.store.remove_binding(domain, user, &c).await
                }
                Change::Save { contact, expires } => {
                    let (life, box_until) = self.lifetimes(*expires);
                    if let Some(until) = box_until {
                        let key = contact_key(domain, user, &contact.to_string());
                        self.leases.set(key, until, now_ms());
                    }
                    let b = self.binding(req, flow, target, contact, life);
                    self.flows.save(domain, user, b.clone(), *flow, now_ms());
                    self.track(flow, domain, user, &b, contact);
                    let put = self.store.put_binding(domain, user, &b).await;
                    self.replace_flow(domain, user, &b).await;
                    put
                }
            };
            match (res, &change) {
                (Err(e), _) => self.store_failed("write", &aor, &e),
                (Ok(()), Change::Save { contact, expires }) => {
                    self.stats.saved.inc();
                    tracing::debug!(aor, contact = %contact, expires, "binding mirrored");
                }
                (Ok(()), _) => {
                    self.stats.removed.inc();
                    tracing::debug!(aor, "binding removed");
                }
            }
        }
    }
}

/// A flow of ours known only from the store (this process restarted since
/// the REGISTER): the phone's address, without the old TCP connection id
/// (ids restart with the process and could name another phone's link).
fn rebuilt_flow(b: &Binding) -> Option<Flow> {
    let local = Uri::parse(&b.socket).ok().and_then(|u| {
        let ip: std::net::IpAddr = u.host.parse().ok()?;
        Some(std::net::SocketAddr::new(ip, u.port?))
    });
    let local = local.unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut flow = unverified_flow(&b.flow, local);
    if flow.is_none() {
        tracing::warn!(
            contact = b.contact,
            flow = b.flow,
            "own binding with a bad flow token"
        );
    }
    if let Some(f) = flow.as_mut() {
        f.conn = None;
    }
    flow
}

#[async_trait]
impl Location for Registrar {
    /// Adds our Path always, and `path` to Supported when missing. RFC
    /// 3327 has the proxy add Path only when the UA lists `path` in
    /// Supported, because the registrar echoes Path back to the UA. Here
    /// the registrar is a farm box that must reach the phone through us
    /// (FreeSWITCH stores Path regardless of Supported), and without it
    /// calls to the phone would bypass the proxy and its NAT flow; listing
    /// `path` keeps a strict registrar from ignoring the header.
    fn prepare_register(&self, req: &mut SipMessage, flow: &Flow) {
        req.headers
            .prepend("Path", &self.own.path_value(flow, &self.keys));
        support_path(req);
        self.to_box(req);
        self.stats.forwarded.inc();
    }

    async fn absorb_register(&self, req: &SipMessage, flow: &Flow) -> Option<SipMessage> {
        self.absorb(req, flow).await
    }

    async fn on_register_final(
        &self,
        req: &SipMessage,
        flow: &Flow,
        target: &Target,
        resp: &mut SipMessage,
    ) {
        if !resp.status().is_some_and(|s| (200..300).contains(&s)) {
            return;
        }
        self.mirror(req, flow, target, resp).await;
        self.to_phone(resp);
        self.flow_timer(req, resp);
    }

    async fn lookup(&self, user: &str, domain: &str) -> Vec<Target> {
        let aor = format!("{user}@{domain}");
        let read = tokio::time::timeout(self.cfg.lookup_timeout, self.store.bindings(domain, user));
        let now = now_ms();
        let bindings = match read.await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => {
                self.store_failed("lookup", &aor, &e);
                self.flows.live(domain, user, now)
            }
            Err(_) => {
                self.store_failed("lookup", &aor, &"timed out");
                self.flows.live(domain, user, now)
            }
        };
        let targets: Vec<Target> = bindings
            .into_iter()
            .filter(|b| b.live_at(now) && !b.unreachable)
            .filter_map(|b| self.target(domain, user, b, now))
            .collect();
        if targets.is_empty() {
            self.stats.lookup_misses.inc();
        } else {
            self.stats.lookup_hits.inc();
        }
        targets
    }
}

/// A REGISTER for `1000@d` from 192.0.2.7 with `extra` header lines
/// (`\r\n`-ended), for the unit tests of this module's parts.
#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
pub(crate) fn test_register(extra: &str) -> SipMessage {
    let text = format!(
        "REGISTER sip:d SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.7;branch=z9hG4bK1\r\n\
         From: <sip:1000@d>;tag=a\r\nTo: <sip:1000@d>\r\nCall-ID: c\r\nCSeq: 2 REGISTER\r\n\
         {extra}Content-Length: 0\r\n\r\n"
    );
    SipMessage::parse(text.as_bytes()).unwrap()
}
