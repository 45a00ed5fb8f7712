//! Builds a [`FarmSnapshot`] from a [`FarmView`]: node routability and the
//! cross-node indexes. Only live nodes' tables are indexed (a dead node's
//! keys linger until the janitor reaps them). Unreadable values are
//! skipped with a debug line and counted, never a panic: Redis may hold
//! anything.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use locus_schema::{EslLink, FarmView, GroupEntry, NodeId, NodeRole, RingEntry, Table};

use super::{Count, FarmSnapshot, GroupCall, Node, NodeIx, Ring, key};
use crate::routing::config::RoutingConfig;
use crate::routing::rendezvous;
use crate::sip::Uri;

impl FarmSnapshot {
    /// The snapshot of `view` at `now_ms` (recorded as its build time),
    /// without health probes (every node's probe counts as up).
    pub fn build(view: &FarmView, now_ms: u64, cfg: &RoutingConfig) -> Self {
        Self::build_with(view, now_ms, cfg, &|_| true)
    }

    /// Like [`FarmSnapshot::build`], with `probe_up` (e.g.
    /// [`crate::health::Health::is_up`]) folded into [`Node::up`]: agent nodes
    /// need lease, ESL and probe; static nodes, having no agent, the probe alone.
    pub fn build_with(
        view: &FarmView,
        now_ms: u64,
        cfg: &RoutingConfig,
        probe_up: &dyn Fn(&NodeId) -> bool,
    ) -> Self {
        let mut snap = Self {
            built_ms: now_ms,
            ..Self::default()
        };
        let mut nodes: Vec<Node> = Vec::with_capacity(view.nodes.len() + cfg.static_nodes.len());
        for (id, v) in &view.nodes {
            let s = &v.image.status;
            nodes.push(Node {
                id: id.clone(),
                sip_uri: s.sip_uri.clone(),
                up: v.live && s.esl == EslLink::Up && !s.sip_uri.is_empty() && probe_up(id),
                draining: s.state == locus_schema::NodeState::Draining,
                spare: s.role == NodeRole::Spare || cfg.is_spare(id),
                agent: true,
                calls: s.calls,
                // An agent that publishes no (or a garbled) weight gets 1.
                weight: s.weight.max(1),
                updated_ms: s.updated_ms,
                hash: rendezvous::hash(id.as_str()),
            });
        }
        for st in &cfg.static_nodes {
            if view.nodes.contains_key(&st.id) {
                tracing::debug!(node.id = %st.id, "static node also has an agent; agent wins");
                continue;
            }
            nodes.push(Node {
                id: st.id.clone(),
                sip_uri: st.sip_uri.clone(),
                up: probe_up(&st.id),
                draining: false,
                spare: cfg.is_spare(&st.id),
                agent: false,
                calls: 0,
                weight: st.weight.max(1),
                updated_ms: 0,
                hash: rendezvous::hash(st.id.as_str()),
            });
        }
        nodes.sort_by(|a, b| a.id.cmp(&b.id));
        for (ix, node) in nodes.iter().enumerate() {
            if let Some(v) = view.nodes.get(&node.id).filter(|v| v.live) {
                snap.index(ix, &node.id, &v.image);
            }
        }
        snap.nodes = nodes.into_iter().map(Arc::new).collect();
        for ((domain, ext), groups) in view.members() {
            snap.members.insert(key(&domain, &ext), groups);
        }
        for (id, domain, ext, entry) in view.claims() {
            if !entry.regs.is_empty() {
                let on = snap.registered.entry(key(domain, ext)).or_default();
                on.push((id.clone(), entry.regs));
            }
        }
        for (domain, node) in &view.tenants {
            snap.tenants
                .insert(domain.to_ascii_lowercase(), node.clone());
        }
        snap.index_addrs();
        snap.sort();
        snap
    }

    /// Nodes by the socket address of their `sip_uri`, and by its IP. A
    /// host name is skipped: resolving it here would put DNS on the build
    /// path (`node_networks` covers nodes known by name).
    fn index_addrs(&mut self) {
        for (ix, n) in self.nodes.iter().enumerate() {
            let Ok(uri) = Uri::parse(&n.sip_uri) else {
                continue;
            };
            let Ok(ip) = uri.host.parse::<IpAddr>() else {
                continue;
            };
            let port = uri.port.unwrap_or(uri.scheme.default_port());
            let addr = SocketAddr::new(ip.to_canonical(), port);
            // Nodes are sorted by id, so each list is too.
            self.ips.entry(addr.ip()).or_default().push(ix);
            if let Some(&other) = self.addrs.get(&addr) {
                tracing::debug!(node.id = %n.id, other = %self.nodes[other].id, %addr,
                    "two nodes share a SIP address; the first by id is kept");
                continue;
            }
            self.addrs.insert(addr, ix);
        }
    }

    fn skip(&mut self, node: &NodeId, table: Table, field: &str) {
        tracing::debug!(node.id = %node, table = table.as_str(), field, "unreadable value skipped");
        self.skipped += 1;
    }

    fn index(&mut self, ix: NodeIx, id: &NodeId, image: &locus_schema::NodeImage) {
        for (field, value) in image.table(Table::Ringing) {
            let entries = serde_json::from_str::<Vec<RingEntry>>(value);
            match (norm(field, 1), entries) {
                (Some(k), Ok(e)) => {
                    if let Some(since_ms) = e.iter().map(|r| r.since_ms).min() {
                        self.ringing
                            .entry(k)
                            .or_default()
                            .push(Ring { node: ix, since_ms });
                    }
                }
                _ => self.skip(id, Table::Ringing, field),
            }
        }
        for (field, value) in image.table(Table::Groups) {
            let entries = serde_json::from_str::<Vec<GroupEntry>>(value);
            match (norm(field, 1), entries) {
                (Some(k), Ok(e)) => {
                    let list = self.groups.entry(k).or_default();
                    for ringing in [true, false] {
                        let newest = e.iter().filter(|g| g.state.is_ringing() == ringing);
                        if let Some(since_ms) = newest.map(|g| g.since_ms).max() {
                            list.push(GroupCall {
                                node: ix,
                                ringing,
                                since_ms,
                            });
                        }
                    }
                }
                _ => self.skip(id, Table::Groups, field),
            }
        }
        for (field, value) in image.table(Table::Lots) {
            let lot = norm(field, 2).and_then(|k| {
                let (lot, _) = k.rsplit_once('/')?;
                Some((lot.to_owned(), k))
            });
            match lot {
                Some((lot, slot)) if !value.is_empty() => {
                    self.slots.entry(slot).or_default().push(ix);
                    bump(self.lots.entry(lot).or_default(), ix, 1);
                }
                _ => self.skip(id, Table::Lots, field),
            }
        }
        for table in [Table::Rooms, Table::Queues] {
            for (field, value) in image.table(table) {
                match (norm(field, 1), value.trim().parse::<u32>()) {
                    (Some(k), Ok(n)) if n > 0 => {
                        let m = match table {
                            Table::Rooms => &mut self.rooms,
                            _ => &mut self.queues,
                        };
                        bump(m.entry(k).or_default(), ix, n);
                    }
                    _ => self.skip(id, table, field),
                }
            }
        }
        for (field, value) in image.table(Table::Sipcalls) {
            if field.is_empty() || value.is_empty() {
                self.skip(id, Table::Sipcalls, field);
            } else {
                self.sipcalls.entry(field.clone()).or_default().push(ix);
            }
        }
    }

    /// Orders every index so lookups read the preferred node first.
    fn sort(&mut self) {
        for v in self.ringing.values_mut() {
            v.sort_by_key(|r| (r.since_ms, r.node));
        }
        for v in self.groups.values_mut() {
            v.sort_by(|a, b| {
                (b.ringing, b.since_ms)
                    .cmp(&(a.ringing, a.since_ms))
                    .then(a.node.cmp(&b.node))
            });
        }
        for m in [&mut self.lots, &mut self.rooms, &mut self.queues] {
            for v in m.values_mut() {
                v.sort_by(|a, b| b.count.cmp(&a.count).then(a.node.cmp(&b.node)));
            }
        }
    }
}

fn bump(counts: &mut Vec<Count>, node: NodeIx, n: u32) {
    match counts.iter_mut().find(|c| c.node == node) {
        Some(c) => c.count = c.count.saturating_add(n),
        None => counts.push(Count { node, count: n }),
    }
}

/// A published `{domain}/...` key with the domain lower-cased, if it has at
/// least `slashes` separators and no empty part.
fn norm(field: &str, slashes: usize) -> Option<String> {
    let (domain, rest) = field.split_once('/')?;
    let parts_ok = rest.split('/').count() == slashes && rest.split('/').all(|p| !p.is_empty());
    (!domain.is_empty() && parts_ok).then(|| key(domain, rest))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::norm;
    use crate::routing::config::RoutingConfig;
    use crate::routing::snapshot::FarmSnapshot;
    use locus_schema::{EslLink, FarmView, NodeId, NodeView};

    fn view(uris: &[(&str, &str)]) -> FarmView {
        let mut v = FarmView::default();
        for (id, uri) in uris {
            let mut n = NodeView {
                live: true,
                ..NodeView::default()
            };
            n.image.status.sip_uri = (*uri).into();
            n.image.status.esl = EslLink::Up;
            v.nodes.insert(NodeId::new(*id).unwrap(), n);
        }
        v
    }

    #[test]
    fn nodes_by_sip_address_and_store_pins() {
        let mut v = view(&[
            ("a", "sips:10.0.0.5"),
            ("b", "sip:[2001:db8::5]"),
            ("c", "sip:10.0.0.6:5080;transport=tcp"),
            ("d", "sip:10.0.0.6:5080"), // same address as c: c (first by id) kept
            ("e", "sip:fs5.example.com:5060"),
            ("f", "garbage"),
        ]);
        v.tenants
            .insert("T1.Example.COM".into(), NodeId::new("b").unwrap());
        let s = FarmSnapshot::build(&v, 1, &RoutingConfig::default());
        let at = |a: &str| s.node_at(a.parse().unwrap()).map(|n| n.id.as_str());
        assert_eq!(at("10.0.0.5:5061"), Some("a"));
        assert_eq!(at("10.0.0.5:5060"), None);
        assert_eq!(at("[2001:db8::5]:5060"), Some("b"));
        assert_eq!(at("10.0.0.6:5080"), Some("c"));
        assert_eq!(at("[::ffff:10.0.0.6]:5080"), Some("c"));
        assert_eq!(s.addrs.len(), 3, "names and garbage are not indexed");
        let from = |a: &str| s.node_from(a.parse().unwrap()).map(|n| n.id.as_str());
        assert_eq!(from("10.0.0.5:40312"), Some("a"), "any port of its IP");
        assert_eq!(from("10.0.0.6:5080"), Some("c"));
        assert_eq!(from("10.0.0.6:41000"), Some("c"), "first by id");
        assert_eq!(from("[::ffff:10.0.0.6]:41000"), Some("c"));
        assert_eq!(from("10.0.0.7:5080"), None);
        assert_eq!(s.nodes_on("10.0.0.6".parse().unwrap()).len(), 2);
        assert_eq!(s.tenant("t1.example.com").map(NodeId::as_str), Some("b"));
        assert_eq!(s.tenant("T1.Example.COM"), None, "callers lower-case");
    }

    #[test]
    fn keys_need_their_parts() {
        assert_eq!(
            norm("D.Example.COM/1001", 1).as_deref(),
            Some("d.example.com/1001")
        );
        assert_eq!(norm("d/valet/6001", 2).as_deref(), Some("d/valet/6001"));
        for bad in ["nodomain", "/1001", "d/", "d/a/b", "d//x"] {
            assert_eq!(norm(bad, 1), None, "{bad}");
        }
        assert_eq!(norm("d/lot", 2), None);
    }
}
