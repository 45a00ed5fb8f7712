//! [`FarmSnapshot`]: an immutable, in-memory view of the farm that routing
//! reads without waiting on Redis. It holds every node with what routing
//! needs (liveness, drain, role, load, SIP URI) and the cross-node indexes
//! the agents leave to readers: by `{domain}/{ext}` ringing, by
//! `{domain}/{group}`, by lot and slot, by room, by queue, by SIP Call-ID,
//! plus pickup-group membership, `tenant:` pins from the store, and the
//! nodes by SIP address and by IP (IP literal `sip_uri`s) for telling farm
//! nodes from phones.
//!
//! Index keys carry the domain lower-cased (SIP host names are
//! case-insensitive, RFC 3261 19.1.4); the rest of a key is kept as
//! published. Built by [`FarmSnapshot::build`] (see `snapshot/build.rs`).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use locus_schema::{NodeId, RegClaim};

mod build;

/// Index of a node in [`FarmSnapshot::nodes`].
pub type NodeIx = usize;

/// One node as routing sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Node id.
    pub id: NodeId,
    /// Where SIP for this node goes.
    pub sip_uri: String,
    /// Routable at all: live lease and ESL up (agent nodes), or declared in
    /// the config (static nodes, until probes say otherwise).
    pub up: bool,
    /// Takes only locality-bound requests.
    pub draining: bool,
    /// Stands by for dead nodes' tenants (role `spare` or listed in `spares`).
    pub spare: bool,
    /// Published by an agent (false for static nodes).
    pub agent: bool,
    /// Live calls, from the agent.
    pub calls: u32,
    /// Weight for weighted balancing (at least 1).
    pub weight: u32,
    /// When the agent last wrote its status (ms since epoch).
    pub updated_ms: u64,
    /// Rendezvous hash of the id, computed once.
    pub(crate) hash: u64,
}

impl Node {
    /// May take new standard calls and new placements (rules 2 and 5):
    /// up, not draining, not a spare.
    pub fn takes_new(&self) -> bool {
        self.up && !self.draining && !self.spare
    }
}

/// A node where an extension rings, with its oldest ringing call's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ring {
    /// The node.
    pub node: NodeIx,
    /// Ringing since (ms).
    pub since_ms: u64,
}

/// A node's newest call of a pickup group, ringing or not (one entry per
/// node and kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCall {
    /// The node.
    pub node: NodeIx,
    /// True for ringing or early calls, false for answered or held ones.
    pub ringing: bool,
    /// Since (ms): ring start, or answer time.
    pub since_ms: u64,
}

/// How many of something (parked calls, room members, waiting callers) a
/// node holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    /// The node.
    pub node: NodeIx,
    /// How many.
    pub count: u32,
}

/// The farm at one moment. Cheap to share (`Arc`), never mutated.
#[derive(Debug, Default)]
pub struct FarmSnapshot {
    pub(crate) nodes: Vec<Arc<Node>>,
    /// `{domain}/{ext}` -> nodes, oldest ringing first.
    pub(crate) ringing: HashMap<String, Vec<Ring>>,
    /// `{domain}/{group}` -> entries, ringing first, then newest first.
    pub(crate) groups: HashMap<String, Vec<GroupCall>>,
    /// `{domain}/{lot}/{slot}` -> nodes.
    pub(crate) slots: HashMap<String, Vec<NodeIx>>,
    /// `{domain}/{lot}` -> parked calls per node, most first.
    pub(crate) lots: HashMap<String, Vec<Count>>,
    /// `{domain}/{room}` -> members per node, most first.
    pub(crate) rooms: HashMap<String, Vec<Count>>,
    /// `{domain}/{queue}` -> waiting per node, most first.
    pub(crate) queues: HashMap<String, Vec<Count>>,
    /// SIP Call-ID -> nodes.
    pub(crate) sipcalls: HashMap<String, Vec<NodeIx>>,
    /// `{domain}/{ext}` -> pickup groups (union of the live nodes' claims).
    pub(crate) members: HashMap<String, Vec<String>>,
    /// `{domain}/{ext}` -> the live nodes holding registrations of the
    /// user, with them (from the nodes' `{id}:members` claims).
    pub(crate) registered: HashMap<String, Vec<(NodeId, Vec<RegClaim>)>>,
    /// Lower-cased domain -> pinned node (`tenant:{domain}` in the store).
    pub(crate) tenants: HashMap<String, NodeId>,
    /// A node's SIP address (from an IP-literal `sip_uri`) -> the node.
    pub(crate) addrs: HashMap<SocketAddr, NodeIx>,
    /// The IP of a node's `sip_uri` -> the nodes there, by id.
    pub(crate) ips: HashMap<IpAddr, Vec<NodeIx>>,
    pub(crate) built_ms: u64,
    pub(crate) skipped: usize,
}

/// `{domain}/{a}` with the domain lower-cased.
pub(crate) fn key(domain: &str, a: &str) -> String {
    let mut k = String::with_capacity(domain.len() + a.len() + 1);
    k.push_str(domain);
    k.make_ascii_lowercase();
    k.push('/');
    k.push_str(a);
    k
}

fn get<'a, T>(map: &'a HashMap<String, Vec<T>>, k: &str) -> &'a [T] {
    map.get(k).map(Vec::as_slice).unwrap_or(&[])
}

impl FarmSnapshot {
    /// Every node (agent nodes, live or not, then static ones), by id.
    pub fn nodes(&self) -> &[Arc<Node>] {
        &self.nodes
    }

    /// The node at `ix`, if any.
    pub fn node(&self, ix: NodeIx) -> Option<&Arc<Node>> {
        self.nodes.get(ix)
    }

    /// The index of node `id`.
    pub fn find(&self, id: &NodeId) -> Option<NodeIx> {
        self.nodes.binary_search_by(|n| n.id.cmp(id)).ok()
    }

    /// Nodes where `ext` rings, oldest ringing call first.
    pub fn ringing(&self, domain: &str, ext: &str) -> &[Ring] {
        get(&self.ringing, &key(domain, ext))
    }

    /// Calls of pickup group `group` per node: ringing ones first, newest
    /// first within each kind.
    pub fn group_calls(&self, domain: &str, group: &str) -> &[GroupCall] {
        get(&self.groups, &key(domain, group))
    }

    /// Pickup groups of `ext` (the union of the live nodes' claims).
    pub fn groups_of(&self, domain: &str, ext: &str) -> &[String] {
        get(&self.members, &key(domain, ext))
    }

    /// The live nodes holding registrations of `ext@domain`, with them.
    pub fn registered_on(&self, domain: &str, ext: &str) -> &[(NodeId, Vec<RegClaim>)] {
        get(&self.registered, &key(domain, ext))
    }

    /// Nodes holding a call in valet slot `slot` of `lot`.
    pub fn slot(&self, domain: &str, lot: &str, slot: &str) -> &[NodeIx] {
        let mut k = key(domain, lot);
        k.push('/');
        k.push_str(slot);
        get(&self.slots, &k)
    }

    /// Parked calls of `lot` per node, most first.
    pub fn lot(&self, domain: &str, lot: &str) -> &[Count] {
        get(&self.lots, &key(domain, lot))
    }

    /// Members of conference `room` per node, most first.
    pub fn room(&self, domain: &str, room: &str) -> &[Count] {
        get(&self.rooms, &key(domain, room))
    }

    /// Callers waiting in `queue` per node, most first.
    pub fn queue(&self, domain: &str, queue: &str) -> &[Count] {
        get(&self.queues, &key(domain, queue))
    }

    /// Nodes holding a leg with SIP Call-ID `call_id`.
    pub fn sipcall(&self, call_id: &str) -> &[NodeIx] {
        get(&self.sipcalls, call_id)
    }

    /// The node pinned to `domain` by the store (`tenant:{domain}`);
    /// `domain` must be lower-cased. Config pins take precedence (the
    /// engine asks these only for unpinned domains).
    pub fn tenant(&self, domain: &str) -> Option<&NodeId> {
        self.tenants.get(domain)
    }

    /// The node whose `sip_uri` is `addr` (IP literal host; port 5060,
    /// 5061 for `sips:`, when the URI has none). IPv4-mapped IPv6
    /// addresses match their IPv4 form (dual-stack sockets).
    pub fn node_at(&self, addr: SocketAddr) -> Option<&Arc<Node>> {
        let addr = SocketAddr::new(addr.ip().to_canonical(), addr.port());
        self.addrs.get(&addr).and_then(|&i| self.nodes.get(i))
    }

    /// The node a packet from `addr` comes from, by IP (any port, any
    /// transport: a box sends over TCP from ephemeral ports): of the nodes
    /// whose `sip_uri` has that IP, the one whose port matches, else the
    /// first by id. IPv4-mapped IPv6 addresses match their IPv4 form.
    pub fn node_from(&self, addr: SocketAddr) -> Option<&Arc<Node>> {
        self.node_at(addr).or_else(|| {
            self.nodes_on(addr.ip())
                .first()
                .and_then(|&i| self.nodes.get(i))
        })
    }

    /// The nodes whose `sip_uri` has IP `ip`, by id.
    pub fn nodes_on(&self, ip: IpAddr) -> &[NodeIx] {
        self.ips
            .get(&ip.to_canonical())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// When the snapshot was built (ms since epoch, the caller's clock).
    pub fn built_ms(&self) -> u64 {
        self.built_ms
    }

    /// Values skipped as unreadable while building (garbage in Redis).
    pub fn skipped(&self) -> usize {
        self.skipped
    }
}
