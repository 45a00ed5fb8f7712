//! The test support of `locus-proxy`, in one place: hand-built farm views
//! for the engine and snapshot tests (here: nodes with a status and tables
//! filled the way the agent publishes them), the proxy core harness
//! ([`proxy`]: a proxy on port 0, sipp, raw UDP), the `FarmRouter` rig
//! ([`rig`]) and the RFC 4475-style message corpus ([`torture`]).

#![allow(dead_code)] // each test binary uses part of it
#![allow(clippy::unwrap_used)] // test helpers may unwrap

pub mod proxy;
pub mod rig;
pub mod torture;

use std::path::PathBuf;

use locus_proxy::{Engine, FarmSnapshot, InFlight, RouteRequest, RoutingConfig};
use locus_schema::{
    CallState, EslLink, FarmView, GroupEntry, NodeId, NodeRole, NodeState, NodeView, RingEntry,
    Table,
};

/// The test domain.
pub const D: &str = "d.example.com";

pub fn id(s: &str) -> NodeId {
    NodeId::new(s).unwrap()
}

/// A farm view under construction.
#[derive(Default)]
pub struct Farm {
    pub view: FarmView,
}

impl Farm {
    pub fn new() -> Self {
        Self::default()
    }

    /// Live nodes with ESL up, `sip:<id>.test:5060`, weight 100, 0 calls.
    pub fn with_nodes(names: &[&str]) -> Self {
        let mut f = Self::new();
        for n in names {
            f.node(n);
        }
        f
    }

    /// The node `name`, created live and up if missing.
    pub fn node(&mut self, name: &str) -> &mut NodeView {
        self.view.nodes.entry(id(name)).or_insert_with(|| {
            let mut v = NodeView {
                id: Some(id(name)),
                live: true,
                heartbeat_ms: 1,
                ..NodeView::default()
            };
            let s = &mut v.image.status;
            s.sip_uri = format!("sip:{name}.test:5060");
            s.esl = EslLink::Up;
            s.weight = 100;
            s.updated_ms = 1;
            v
        })
    }

    pub fn calls(&mut self, name: &str, calls: u32) -> &mut Self {
        self.node(name).image.status.calls = calls;
        self
    }

    pub fn drain(&mut self, name: &str) -> &mut Self {
        self.node(name).image.status.state = NodeState::Draining;
        self
    }

    pub fn spare(&mut self, name: &str) -> &mut Self {
        self.node(name).image.status.role = NodeRole::Spare;
        self
    }

    /// Lease expired.
    pub fn dead(&mut self, name: &str) -> &mut Self {
        self.node(name).live = false;
        self
    }

    pub fn esl_down(&mut self, name: &str) -> &mut Self {
        self.node(name).image.status.esl = EslLink::Down;
        self
    }

    /// Sets a raw table field.
    pub fn raw(&mut self, name: &str, table: Table, field: &str, value: &str) -> &mut Self {
        let tables = &mut self.node(name).image.tables;
        tables
            .entry(table)
            .or_default()
            .insert(field.into(), value.into());
        self
    }

    fn push_json<T: serde::Serialize + serde::de::DeserializeOwned>(
        &mut self,
        name: &str,
        table: Table,
        field: &str,
        entry: T,
    ) -> &mut Self {
        let old = self
            .node(name)
            .image
            .tables
            .get(&table)
            .and_then(|t| t.get(field))
            .cloned();
        let mut list: Vec<T> = old
            .map(|o| serde_json::from_str(&o).unwrap())
            .unwrap_or_default();
        list.push(entry);
        let json = serde_json::to_string(&list).unwrap();
        self.raw(name, table, field, &json)
    }

    /// A call ringing `ext` since `since_ms`.
    pub fn ring(&mut self, name: &str, ext: &str, uuid: &str, since_ms: u64) -> &mut Self {
        let e = RingEntry {
            uuid: uuid.into(),
            since_ms,
        };
        self.push_json(name, Table::Ringing, &format!("{D}/{ext}"), e)
    }

    /// A call of pickup group `group`.
    pub fn group_call(
        &mut self,
        name: &str,
        group: &str,
        uuid: &str,
        state: CallState,
        since_ms: u64,
    ) -> &mut Self {
        let e = GroupEntry {
            uuid: uuid.into(),
            state,
            since_ms,
        };
        self.push_json(name, Table::Groups, &format!("{D}/{group}"), e)
    }

    pub fn park(&mut self, name: &str, lot: &str, slot: &str, uuid: &str) -> &mut Self {
        self.raw(name, Table::Lots, &format!("{D}/{lot}/{slot}"), uuid)
    }

    pub fn room(&mut self, name: &str, room: &str, members: u32) -> &mut Self {
        self.raw(
            name,
            Table::Rooms,
            &format!("{D}/{room}"),
            &members.to_string(),
        )
    }

    pub fn queue(&mut self, name: &str, queue: &str, waiting: u32) -> &mut Self {
        self.raw(
            name,
            Table::Queues,
            &format!("{D}/{queue}"),
            &waiting.to_string(),
        )
    }

    pub fn sipcall(&mut self, name: &str, call_id: &str, uuid: &str) -> &mut Self {
        self.raw(name, Table::Sipcalls, call_id, uuid)
    }

    /// A live node's claim (`{id}:members`) that `ext` is registered
    /// there, in `groups` (on the first node by id: membership is the
    /// union over nodes, so which one does not matter).
    pub fn member(&mut self, ext: &str, groups: &[&str]) -> &mut Self {
        let entry = locus_schema::MemberEntry {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            regs: vec![],
        };
        let node = match self.view.nodes.keys().next() {
            Some(id) => id.as_str().to_owned(),
            None => panic!("add a node before a member"),
        };
        let value = serde_json::to_string(&entry).unwrap();
        self.raw(&node, Table::Members, &format!("{D}/{ext}"), &value)
    }

    pub fn snapshot(&self, cfg: &RoutingConfig) -> FarmSnapshot {
        FarmSnapshot::build(&self.view, 1_000, cfg)
    }
}

/// An engine, a snapshot of `farm` and empty in-flight counts.
pub struct Setup {
    pub engine: Engine,
    pub snap: FarmSnapshot,
    pub inflight: InFlight,
}

impl Setup {
    pub fn new(farm: &Farm, cfg: &RoutingConfig) -> Self {
        Self {
            engine: Engine::new(cfg).unwrap(),
            snap: farm.snapshot(cfg),
            inflight: InFlight::new(),
        }
    }

    pub fn vanilla(farm: &Farm) -> Self {
        Self::new(farm, &RoutingConfig::default())
    }

    /// The target ids of an INVITE from `from` dialling `to` in [`D`].
    pub fn invite(&self, to: &str, from: &str) -> Vec<String> {
        let req = RouteRequest::invite(to, D, from, "cid-1@phone");
        self.route(&req)
            .ids()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    pub fn route(&self, req: &RouteRequest<'_>) -> locus_proxy::Decision {
        self.engine.route(&self.snap, req, &self.inflight)
    }
}

/// The installed `sipp`; a missing one fails the test unless
/// `LOCUS_SKIP_SIPP=1` (see `locus_schema::testing::sipp`).
pub fn sipp() -> Option<PathBuf> {
    locus_schema::testing::sipp()
}
