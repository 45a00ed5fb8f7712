//! The rig of `farm_router.rs`: three nodes in the in-memory store (two
//! on one host, by port), a fake registrar with fixed bindings, message
//! builders and verdict readers.

#![allow(dead_code)] // not every helper is used by every test
#![allow(clippy::unwrap_used)] // test helpers may unwrap

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use locus_proxy::policy::{Policy, PolicyConfig};
use locus_proxy::proxy::{Dest, Flow, Fork, Label, Location, Target, Verdict};
use locus_proxy::sip::{SipMessage, Transport, Uri};
use locus_proxy::{Engine, FarmRouter, FarmSync, RoutingConfig};
use locus_schema::store::memory::MemStore;
use locus_schema::{EslLink, Keys, NodeId, NodeImage, NodeStatus, NodeStore, Table};

pub const D: &str = "d.example.com";
pub const PHONE: &str = "198.51.100.20:5060";
pub const TRUNK: &str = "192.0.2.9:5060";

pub fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// What the fake registrar saw.
#[derive(Default)]
pub struct Seen {
    pub prepared: Vec<Flow>,
    pub finals: Vec<(u16, Option<NodeId>)>,
    pub lookups: Vec<String>,
}

/// A registrar with fixed bindings: `user@domain` -> contacts.
#[derive(Default)]
pub struct FakeLocation {
    pub bindings: Vec<(String, Vec<Target>)>,
    pub seen: Mutex<Seen>,
}

#[async_trait]
impl Location for FakeLocation {
    fn prepare_register(&self, req: &mut SipMessage, flow: &Flow) {
        req.headers
            .prepend("Path", &format!("<sip:proxy;lr;flow={}>", flow.token()));
        self.seen.lock().unwrap().prepared.push(*flow);
    }

    async fn on_register_final(&self, _: &SipMessage, _: &Flow, t: &Target, r: &mut SipMessage) {
        let s = (r.status().unwrap(), t.node.clone());
        self.seen.lock().unwrap().finals.push(s);
    }

    async fn lookup(&self, user: &str, domain: &str) -> Vec<Target> {
        let aor = format!("{user}@{domain}");
        self.seen.lock().unwrap().lookups.push(aor.clone());
        self.bindings
            .iter()
            .find(|(a, _)| *a == aor)
            .map(|(_, t)| t.clone())
            .unwrap_or_default()
    }
}

pub fn contact(uri: &str, src: &str) -> Target {
    Target {
        dest: Dest::Flow(flow(src)),
        ruri: Some(Uri::parse(uri).unwrap()),
        node: None,
        route: Vec::new(),
    }
}

pub fn flow(src: &str) -> Flow {
    Flow {
        source: src.parse().unwrap(),
        transport: Transport::Udp,
        conn: None,
        local: "10.0.0.100:5060".parse().unwrap(),
    }
}

pub struct Rig {
    pub store: MemStore,
    pub router: FarmRouter,
    pub sync: Arc<FarmSync>,
    pub loc: Arc<FakeLocation>,
}

/// Nodes a (10.0.0.1:5080), b (10.0.0.1:5082), c (10.0.0.3:5080) with
/// `calls`; `rooms` = (node, room) conferences.
pub async fn rig(
    calls: [u32; 3],
    rooms: &[(&str, &str)],
    routing: RoutingConfig,
    policy: &str,
    loc: FakeLocation,
) -> Rig {
    let store = MemStore::new(Keys::default());
    let addrs = ["10.0.0.1:5080", "10.0.0.1:5082", "10.0.0.3:5080"];
    for ((name, addr), calls) in ["a", "b", "c"].into_iter().zip(addrs).zip(calls) {
        let mut status = NodeStatus {
            sip_uri: format!("sip:{addr}"),
            esl: EslLink::Up,
            calls,
            weight: 1,
            ..NodeStatus::default()
        };
        status.updated_ms = 1;
        store
            .lease(&id(name), &status, Duration::from_secs(3600))
            .await
            .unwrap();
        let mut image = NodeImage {
            status,
            ..NodeImage::default()
        };
        for (n, room) in rooms {
            if *n == name {
                image
                    .tables
                    .entry(Table::Rooms)
                    .or_default()
                    .insert(format!("{D}/{room}"), "2".into());
            }
        }
        store.replace(&id(name), &image).await.unwrap();
    }
    let routing = Arc::new(routing);
    let sync = Arc::new(FarmSync::new(routing.clone()));
    assert!(sync.refresh(&store).await);
    let cfg: PolicyConfig = toml::from_str(policy).unwrap();
    let policy = Policy::new(&cfg, vec!["proxy.example.com".into()]).unwrap();
    let engine = Arc::new(Engine::new(&routing).unwrap());
    let loc = Arc::new(loc);
    let router = FarmRouter::new(
        policy,
        engine,
        sync.clone(),
        Some(loc.clone() as Arc<dyn Location>),
    );
    Rig {
        store,
        router,
        sync,
        loc,
    }
}

pub const POLICY: &str = r#"
domains = ["d.example.com", "t1.example.com"]
gateways = ["sip:gw1.carrier.example:5060", "sip:192.0.2.200:5070;transport=tcp"]
[dids]
"+3906" = "d.example.com"
"+390612" = "t1.example.com"
"3000" = "d.example.com"
[[trunks]]
name = "carrier"
sources = ["192.0.2.0/24"]
"#;

pub async fn plain() -> Rig {
    rig(
        [0; 3],
        &[],
        RoutingConfig::default(),
        POLICY,
        FakeLocation::default(),
    )
    .await
}

pub fn msg(method: &str, ruri: &str, from: &str, to: &str, call_id: &str) -> SipMessage {
    let raw = format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK1\r\n\
From: <{from}>;tag=f1\r\nTo: <{to}>\r\nCall-ID: {call_id}\r\n\
CSeq: 1 {method}\r\nContent-Length: 0\r\n\r\n"
    );
    SipMessage::parse(raw.as_bytes()).unwrap()
}

pub fn invite(ruri: &str, call_id: &str) -> SipMessage {
    msg("INVITE", ruri, "sip:1001@d.example.com", ruri, call_id)
}

pub fn response(status: u16, extra: &str) -> SipMessage {
    let raw = format!(
        "SIP/2.0 {status} X\r\nVia: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bK1\r\n\
From: <sip:1001@d.example.com>;tag=f1\r\nTo: <sip:2000@d.example.com>;tag=t\r\n\
Call-ID: c\r\nCSeq: 1 INVITE\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    SipMessage::parse(raw.as_bytes()).unwrap()
}

/// Targets' node ids, in order.
pub fn nodes(v: &Verdict) -> Vec<&str> {
    match v {
        Verdict::Forward { targets, .. } => targets
            .iter()
            .map(|t| t.node.as_ref().map_or("-", |n| n.as_str()))
            .collect(),
        Verdict::Reply { .. } | Verdict::Respond(_) => Vec::new(),
    }
}

pub fn label(v: &Verdict) -> Option<(Label, Fork)> {
    match v {
        Verdict::Forward { label, fork, .. } => Some((*label, *fork)),
        Verdict::Reply { .. } | Verdict::Respond(_) => None,
    }
}

pub fn status(v: &Verdict) -> Option<u16> {
    match v {
        Verdict::Reply { status, .. } => Some(*status),
        Verdict::Respond(r) => r.status(),
        Verdict::Forward { .. } => None,
    }
}

pub fn label_of(v: &Verdict) -> Option<Label> {
    label(v).map(|l| l.0)
}
