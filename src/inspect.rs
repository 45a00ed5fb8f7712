//! `locus inspect`: the farm as stored, as aligned tables or JSON. It reads
//! the store only, so it shows exactly what proxies and hooks see.

use std::fmt::Write as _;

use clap::ValueEnum;
use locus_schema::{Binding, CallRecord, FarmView, GroupEntry, NodeView, RingEntry, Table};
use serde_json::{Value, json};

/// What `inspect` shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum What {
    /// Nodes: lease, ESL link, state, load.
    Nodes,
    /// Live calls of every node.
    Calls,
    /// Extensions ringing (for **EXT directed pickup).
    Ringing,
    /// Pickup groups and their calls (for *8).
    Groups,
    /// Group membership of extensions.
    Members,
    /// Parked calls by lot and slot.
    Lots,
    /// Conference rooms and their size.
    Rooms,
    /// Queues and their waiting callers.
    Queues,
    /// Registered phones (the proxies' location service), optionally of
    /// one AOR: contact, source, NAT, owner proxy, flow, expiry,
    /// reachable, User-Agent.
    Registrations,
    /// Print change notices as they happen (Ctrl-C ends).
    Watch,
}

/// Renders one view of the farm. `now_ms` is used for ages.
pub fn render(farm: &FarmView, what: What, as_json: bool, now_ms: u64) -> String {
    let (head, rows) = rows(farm, what, now_ms);
    emit(&head, &rows, as_json)
}

/// Renders `locus inspect registrations`: `(domain, user, binding)` rows.
pub fn render_registrations(
    regs: &[(String, String, Binding)],
    as_json: bool,
    now_ms: u64,
) -> String {
    let head = [
        "AOR",
        "CONTACT",
        "SOURCE",
        "TRANSPORT",
        "NAT",
        "PROXY",
        "FLOW",
        "EXPIRES",
        "REACHABLE",
        "NODE",
        "USER_AGENT",
    ];
    let rows: Vec<Vec<Value>> = regs
        .iter()
        .map(|(domain, user, b)| {
            let left = b.expires_ms.saturating_sub(now_ms) / 1000;
            vec![
                json!(format!("{user}@{domain}")),
                json!(b.contact),
                json!(b.received),
                json!(b.transport),
                json!(if b.nat { "yes" } else { "no" }),
                json!(b.proxy),
                // The token's body (`u~ADDR~0`); its signature says nothing here.
                json!(format!(
                    "{} via {}",
                    b.flow
                        .rsplit_once('~')
                        .map_or(b.flow.as_str(), |(body, _)| body),
                    b.socket
                )),
                json!(format!("{left}s")),
                json!(if b.unreachable { "no" } else { "yes" }),
                json!(b.node.as_ref().map(|n| n.as_str()).unwrap_or("-")),
                json!(b.user_agent.as_deref().unwrap_or("-")),
            ]
        })
        .collect();
    emit(&head, &rows, as_json)
}

/// A table, or with `as_json` a JSON list of objects keyed by the
/// lower-cased column names.
fn emit(head: &[&str], rows: &[Vec<Value>], as_json: bool) -> String {
    if as_json {
        let list: Vec<Value> = rows
            .iter()
            .map(|r| {
                Value::Object(
                    head.iter()
                        .map(|h| h.to_ascii_lowercase())
                        .zip(r.iter().cloned())
                        .collect(),
                )
            })
            .collect();
        return serde_json::to_string_pretty(&list).unwrap_or_default();
    }
    let text: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect()
        })
        .collect();
    table(head, &text)
}

fn age(now_ms: u64, since: u64) -> String {
    if since == 0 || since > now_ms {
        return "-".into();
    }
    let s = (now_ms - since) / 1000;
    if s < 120 {
        format!("{s}s")
    } else {
        format!("{}m", s / 60)
    }
}

fn tables(n: &NodeView, t: Table) -> impl Iterator<Item = (&String, &String)> {
    n.image.table(t)
}

fn rows(farm: &FarmView, what: What, now: u64) -> (Vec<&'static str>, Vec<Vec<Value>>) {
    let mut out = Vec::new();
    let live = farm
        .nodes
        .iter()
        .filter(|(_, n)| n.live || what == What::Nodes);
    match what {
        What::Nodes => {
            for (id, n) in live {
                let s = &n.image.status;
                out.push(vec![
                    json!(id.as_str()),
                    json!(if n.live { "live" } else { "expired" }),
                    json!(word(&s.state)),
                    json!(word(&s.role)),
                    json!(word(&s.esl)),
                    json!(s.calls),
                    json!(s.channels),
                    json!(s.max_sessions),
                    json!(format!("{:.1}", s.idle_cpu)),
                    json!(s.sps),
                    json!(s.version),
                    json!(s.sip_uri),
                    json!(age(now, n.heartbeat_ms)),
                ]);
            }
            let h = vec![
                "NODE", "LEASE", "STATE", "ROLE", "ESL", "CALLS", "CHANNELS", "MAX", "IDLE", "SPS",
                "VERSION", "SIP_URI", "SEEN",
            ];
            (h, out)
        }
        What::Calls => {
            for (id, n) in live {
                for (uuid, v) in tables(n, Table::Calls) {
                    match serde_json::from_str::<CallRecord>(v) {
                        Ok(c) => {
                            let place = [
                                c.lot
                                    .as_ref()
                                    .zip(c.slot.as_ref())
                                    .map(|(l, s)| format!("lot {l}/{s}")),
                                c.room.as_ref().map(|r| format!("room {r}")),
                                c.queue.as_ref().map(|q| format!("queue {q}")),
                            ]
                            .into_iter()
                            .flatten()
                            .collect::<Vec<_>>()
                            .join(" ");
                            out.push(vec![
                                json!(id.as_str()),
                                json!(uuid),
                                json!(c.domain),
                                json!(c.from),
                                json!(c.to_ext),
                                json!(c.state.as_str()),
                                json!(c.group.unwrap_or_default()),
                                json!(place),
                                json!(age(now, c.created_ms)),
                            ]);
                        }
                        Err(_) => out.push(vec![
                            json!(id.as_str()),
                            json!(uuid),
                            json!("?"),
                            json!("?"),
                            json!("?"),
                            json!("garbled"),
                            json!(""),
                            json!(""),
                            json!("-"),
                        ]),
                    }
                }
            }
            (
                vec![
                    "NODE", "UUID", "DOMAIN", "FROM", "TO", "STATE", "GROUP", "WHERE", "AGE",
                ],
                out,
            )
        }
        What::Ringing => {
            for (id, n) in live {
                for (key, v) in tables(n, Table::Ringing) {
                    let list: Vec<RingEntry> = serde_json::from_str(v).unwrap_or_default();
                    let uuids = list
                        .iter()
                        .map(|e| format!("{} ({})", e.uuid, age(now, e.since_ms)))
                        .collect::<Vec<_>>()
                        .join(", ");
                    out.push(vec![json!(id.as_str()), json!(key), json!(uuids)]);
                }
            }
            (vec!["NODE", "EXTENSION", "CALLS"], out)
        }
        What::Groups => {
            for (id, n) in live {
                for (key, v) in tables(n, Table::Groups) {
                    let list: Vec<GroupEntry> = serde_json::from_str(v).unwrap_or_default();
                    let calls = list
                        .iter()
                        .map(|e| {
                            format!("{} {} ({})", e.uuid, e.state.as_str(), age(now, e.since_ms))
                        })
                        .collect::<Vec<_>>()
                        .join(", ");
                    out.push(vec![json!(id.as_str()), json!(key), json!(calls)]);
                }
            }
            (vec!["NODE", "GROUP", "CALLS"], out)
        }
        What::Members => {
            for ((domain, ext), groups) in &farm.members() {
                out.push(vec![json!(domain), json!(ext), json!(groups.join(","))]);
            }
            (vec!["DOMAIN", "EXTENSION", "GROUPS"], out)
        }
        What::Lots => {
            for (id, n) in live {
                for (key, uuid) in tables(n, Table::Lots) {
                    out.push(vec![json!(id.as_str()), json!(key), json!(uuid)]);
                }
            }
            (vec!["NODE", "LOT/SLOT", "UUID"], out)
        }
        What::Rooms | What::Queues | What::Watch | What::Registrations => {
            let t = if what == What::Queues {
                Table::Queues
            } else {
                Table::Rooms
            };
            for (id, n) in live {
                for (key, count) in tables(n, t) {
                    out.push(vec![
                        json!(id.as_str()),
                        json!(key),
                        json!(count.parse::<u64>().unwrap_or(0)),
                    ]);
                }
            }
            let h = if what == What::Queues {
                vec!["NODE", "QUEUE", "WAITING"]
            } else {
                vec!["NODE", "ROOM", "MEMBERS"]
            };
            (h, out)
        }
    }
}

fn word<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// Aligned text table.
pub fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < w.len() {
                w[i] = w[i].max(c.chars().count());
            }
        }
    }
    let mut s = String::new();
    let line = |s: &mut String, cells: &mut dyn Iterator<Item = &str>| {
        let mut parts = Vec::new();
        for (i, c) in cells.enumerate() {
            parts.push(format!(
                "{c:<width$}",
                width = w.get(i).copied().unwrap_or(0)
            ));
        }
        let _ = writeln!(s, "{}", parts.join("  ").trim_end());
    };
    line(&mut s, &mut head.iter().copied());
    for r in rows {
        line(&mut s, &mut r.iter().map(String::as_str));
    }
    if rows.is_empty() {
        s.push_str("(none)\n");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use locus_schema::{NodeId, NodeImage};

    fn farm() -> FarmView {
        let mut image = NodeImage::default();
        image.status.calls = 1;
        image.status.sip_uri = "sip:127.0.0.1:5060".into();
        let call = r#"{"uuid":"u1","domain":"d","direction":"inbound","from":"1000","to_ext":"1001","state":"ringing","group":"techsupport","legs":[],"sip_call_ids":[],"created_ms":1000}"#;
        image
            .tables
            .entry(Table::Calls)
            .or_default()
            .insert("u1".into(), call.into());
        image
            .tables
            .entry(Table::Rooms)
            .or_default()
            .insert("d/3000".into(), "2".into());
        let mut f = FarmView::default();
        let id = NodeId::new("fs1").unwrap();
        f.nodes.insert(
            id.clone(),
            NodeView {
                id: Some(id),
                image,
                heartbeat_ms: 5000,
                live: true,
            },
        );
        f
    }

    #[test]
    fn calls_table_and_json() {
        let f = farm();
        let t = render(&f, What::Calls, false, 11_000);
        assert!(t.lines().next().unwrap().starts_with("NODE"));
        assert!(t.contains("techsupport") && t.contains("ringing") && t.contains("10s"));
        let j: Value = serde_json::from_str(&render(&f, What::Rooms, true, 0)).unwrap();
        assert_eq!(j[0]["members"], 2);
        assert_eq!(j[0]["room"], "d/3000");
    }

    #[test]
    fn expired_nodes_hidden_except_in_nodes() {
        let mut f = farm();
        for n in f.nodes.values_mut() {
            n.live = false;
        }
        assert!(render(&f, What::Calls, false, 0).contains("(none)"));
        assert!(render(&f, What::Nodes, false, 0).contains("expired"));
    }
}
