//! A call (the legs FreeSWITCH joined) and what it publishes: its record,
//! its state, and its entries in the index tables.
//!
//! A call is named after its oldest leg (the A-leg), so that a snapshot
//! fed into a fresh model names calls as the live stream did, whatever
//! order the legs arrive in.

use std::collections::HashMap;

use locus_schema::{CallRecord, CallState, Direction, GroupEntry, RingEntry, Table};

use super::ModelConfig;
use super::channel::{Channel, Membership};
use super::index::Item;

/// A call: a set of legs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Call {
    /// Channel uuids of its legs (unordered).
    pub legs: Vec<String>,
    /// Uuids of channels not seen yet that belong to this call (a B-leg
    /// seen before its A-leg in a snapshot), so they join it on arrival.
    pub awaiting: Vec<String>,
}

/// The call as its legs describe it, before serialisation.
struct View<'a> {
    legs: Vec<&'a Channel>,
    domain: String,
    state: CallState,
}

/// Order of legs: oldest first; on a tie the leg the box placed goes
/// after the one it was placed for.
fn rank(c: &Channel) -> (u64, bool, &str) {
    (c.created_us, c.outbound, c.uuid.as_str())
}

fn first<'a>(legs: &[&'a Channel], f: impl Fn(&'a Channel) -> Option<&'a str>) -> Option<&'a str> {
    legs.iter().find_map(|c| f(c))
}

/// The call's state from its legs' states (DESIGN.md `{id}:calls`).
fn state(legs: &[&Channel]) -> CallState {
    if legs.iter().any(|c| c.valet.is_some()) {
        return CallState::Parked;
    }
    if legs.iter().any(|c| c.room.is_some()) {
        return CallState::Conference;
    }
    if legs.iter().any(|c| c.queue.is_some()) {
        return CallState::Queued;
    }
    let mut callees = legs.iter().filter(|c| c.is_ringing_callee()).peekable();
    if callees.peek().is_some() {
        return if callees.any(|c| c.early) {
            CallState::Early
        } else {
            CallState::Ringing
        };
    }
    if legs.iter().any(|c| c.answered_ms.is_some()) {
        let live = || legs.iter().filter(|c| c.alive());
        if live().any(|c| c.held) {
            return CallState::Held;
        }
        if live().any(|c| c.parked && !c.bridged) {
            return CallState::Parked;
        }
        return CallState::Answered;
    }
    // Nobody placed a leg yet: the caller is still in the dialplan.
    if legs.iter().any(|c| c.early) {
        CallState::Early
    } else {
        CallState::Ringing
    }
}

/// Strips the domain suffix FreeSWITCH's vanilla dialplan appends
/// (`3000-127.0.0.1`, `5900@127.0.0.1`).
fn short_name<'a>(name: &'a str, sep: char, domain: &str) -> &'a str {
    name.strip_suffix(domain)
        .and_then(|n| n.strip_suffix(sep))
        .filter(|n| !n.is_empty())
        .unwrap_or(name)
}

impl<'a> View<'a> {
    fn new(call: &Call, channels: &'a HashMap<String, Channel>, cfg: &ModelConfig) -> Option<Self> {
        let mut legs: Vec<&Channel> = call.legs.iter().filter_map(|u| channels.get(u)).collect();
        if legs.is_empty() {
            return None;
        }
        legs.sort_by(|a, b| rank(a).cmp(&rank(b)));
        let domain = first(&legs, |c| c.domain_name.as_deref())
            .or_else(|| first(&legs, |c| c.dialed_domain.as_deref()))
            .or(cfg.default_domain.as_deref())
            .unwrap_or("default")
            .to_owned();
        let state = state(&legs);
        Some(View {
            legs,
            domain,
            state,
        })
    }

    fn uuid(&self) -> &str {
        &self.legs[0].uuid
    }

    /// Room key parts: (domain, room) of a conference membership.
    fn room(&self, m: &Membership) -> (String, String) {
        let known = first(&self.legs, |c| c.domain_name.as_deref())
            .or_else(|| first(&self.legs, |c| c.dialed_domain.as_deref()));
        let domain = known
            .or(m.domain_hint.as_deref())
            .unwrap_or(&self.domain)
            .to_owned();
        let room = short_name(&m.name, '-', &domain).to_owned();
        (domain, room)
    }

    fn queue(&self, m: &Membership) -> String {
        short_name(&m.name, '@', &self.domain).to_owned()
    }

    fn record(&self) -> CallRecord {
        let a = self.legs[0];
        let mut sip_call_ids: Vec<String> = Vec::new();
        for id in self.legs.iter().filter_map(|c| c.sip_call_id.as_ref()) {
            if !sip_call_ids.contains(id) {
                sip_call_ids.push(id.clone());
            }
        }
        let valet = self.legs.iter().find_map(|c| c.valet.as_ref());
        CallRecord {
            uuid: a.uuid.clone(),
            domain: self.domain.clone(),
            direction: if a.outbound {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            from: a.caller.clone(),
            to_ext: first(&self.legs, |c| c.ext.as_deref())
                .unwrap_or(&a.dest)
                .to_owned(),
            state: self.state,
            group: first(&self.legs, |c| c.group.as_deref()).map(str::to_owned),
            lot: valet.map(|v| v.0.clone()),
            slot: valet.map(|v| v.1.clone()),
            room: self
                .legs
                .iter()
                .find_map(|c| c.room.as_ref())
                .map(|m| self.room(m).1),
            queue: self
                .legs
                .iter()
                .find_map(|c| c.queue.as_ref())
                .map(|m| self.queue(m)),
            legs: self.legs.iter().map(|c| c.uuid.clone()).collect(),
            sip_call_ids,
            created_ms: a.created_ms(),
            answered_ms: self.legs.iter().filter_map(|c| c.answered_ms).max(),
        }
    }
}

fn item(table: Table, field: String, order: u64, tie: &str, payload: String) -> Item {
    Item {
        table,
        field,
        order,
        tie: tie.to_owned(),
        payload,
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Plain structs of strings and numbers: serialisation cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

/// Everything call `call` publishes (empty when it has no legs left).
pub(crate) fn items(
    call: &Call,
    channels: &HashMap<String, Channel>,
    cfg: &ModelConfig,
) -> Vec<Item> {
    let Some(view) = View::new(call, channels, cfg) else {
        return Vec::new();
    };
    let uuid = view.uuid().to_owned();
    let record = view.record();
    let mut out = Vec::with_capacity(8);

    if view.state.is_ringing() {
        // One entry per extension being rung; the call's own extension
        // stands in for a leg that has none.
        let call_ext = first(&view.legs, |c| c.ext.as_deref());
        let mut rung: Vec<(String, u64)> = Vec::new();
        for c in view.legs.iter().filter(|c| c.is_ringing_callee()) {
            let Some(ext) = c.ext.as_deref().or(call_ext) else {
                continue;
            };
            let key = format!("{}/{ext}", view.domain);
            match rung.iter_mut().find(|(k, _)| *k == key) {
                Some((_, since)) => *since = (*since).min(c.created_ms()),
                None => rung.push((key, c.created_ms())),
            }
        }
        for (key, since_ms) in rung {
            let entry = RingEntry {
                uuid: uuid.clone(),
                since_ms,
            };
            out.push(item(Table::Ringing, key, since_ms, &uuid, json(&entry)));
        }
    }

    if let Some(group) = &record.group {
        let since_ms = match view.state {
            CallState::Ringing | CallState::Early => Some(
                view.legs
                    .iter()
                    .filter(|c| c.is_ringing_callee())
                    .map(|c| c.created_ms())
                    .min()
                    .unwrap_or(record.created_ms),
            ),
            CallState::Answered | CallState::Held => {
                Some(record.answered_ms.unwrap_or(record.created_ms))
            }
            _ => None,
        };
        if let Some(since_ms) = since_ms {
            let entry = GroupEntry {
                uuid: uuid.clone(),
                state: view.state,
                since_ms,
            };
            let key = format!("{}/{group}", view.domain);
            out.push(item(
                Table::Groups,
                key,
                record.created_ms,
                &uuid,
                json(&entry),
            ));
        }
    }

    for c in &view.legs {
        if let Some((lot, slot)) = &c.valet {
            let key = format!("{}/{lot}/{slot}", view.domain);
            out.push(item(Table::Lots, key, 0, &uuid, uuid.clone()));
        }
        if let Some(m) = &c.room {
            let (domain, room) = view.room(m);
            out.push(item(
                Table::Rooms,
                format!("{domain}/{room}"),
                0,
                &c.uuid,
                String::new(),
            ));
        }
        if let Some(m) = &c.queue {
            let key = format!("{}/{}", view.domain, view.queue(m));
            out.push(item(Table::Queues, key, 0, &c.uuid, String::new()));
        }
        if let Some(id) = &c.sip_call_id {
            out.push(item(Table::Sipcalls, id.clone(), 0, &uuid, uuid.clone()));
        }
    }
    out.push(item(Table::Calls, uuid.clone(), 0, "", json(&record)));
    out
}
