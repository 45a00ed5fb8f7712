//! Valet lots, conference rooms and queues (call center and FIFO): which
//! channel is where, from the modules' CUSTOM events and from the listings
//! a resync reads.
//!
//! Facts from the captures: `valet_parking::info` names the parked channel
//! in `Unique-ID` for hold, bridge (with `Bridge-To-UUID` = the retriever)
//! and exit. `conference::maintenance` add-member/del-member name the member
//! in `Unique-ID` and repeat `Conference-*` headers (first wins).
//! `callcenter::info` names the waiting caller in `CC-Member-Session-UUID`
//! and sends `member-queue-end` only when the caller hangs up, so a caller
//! stops waiting at `bridge-agent-start`. `fifo::info` names the caller in
//! `Unique-ID` for push / caller_pop / abort, and in `FIFO-Caller-UUID` for
//! consumer_pop.

use std::collections::{HashMap, HashSet};

use crate::listing::{ConferenceEntry, QueueEntry, ValetEntry};

use super::channel::{Channel, Membership};
use super::facts::Facts;
use super::{Model, Update};

/// Which channels hold a membership, by feature (the channel holds the
/// details); lets a listing or a `conference-destroy` find them.
#[derive(Debug, Default)]
pub(crate) struct Features {
    valet: HashSet<String>,
    rooms: HashMap<String, HashSet<String>>,
    queues: HashMap<String, HashSet<String>>,
}

fn unlist(map: &mut HashMap<String, HashSet<String>>, name: &str, uuid: &str) {
    if let Some(set) = map.get_mut(name) {
        set.remove(uuid);
        if set.is_empty() {
            map.remove(name);
        }
    }
}

impl Features {
    /// Drops a channel that is gone.
    pub fn forget(&mut self, ch: &Channel) {
        self.valet.remove(&ch.uuid);
        if let Some(m) = &ch.room {
            unlist(&mut self.rooms, &m.name, &ch.uuid);
        }
        if let Some(m) = &ch.queue {
            unlist(&mut self.queues, &m.name, &ch.uuid);
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Room,
    Queue,
}

impl Model {
    /// A CUSTOM event.
    pub(crate) fn on_custom(&mut self, f: &Facts<'_>, now_ms: u64) {
        let Some(subclass) = f.subclass else { return };
        if subclass.starts_with("sofia::") {
            self.on_sofia(f);
            return;
        }
        if !matches!(
            subclass,
            "valet_parking::info" | "conference::maintenance" | "callcenter::info" | "fifo::info"
        ) {
            return;
        }
        // These events carry the channel's data when they concern one.
        let known = match f.uuid {
            Some(uuid) => self.touch_channel(uuid, f, now_ms),
            None => false,
        };
        let uuid = f.uuid.filter(|_| known);
        match subclass {
            "valet_parking::info" => match (f.action, uuid) {
                (Some("hold"), Some(u)) => {
                    if let (Some(lot), Some(slot)) = (f.valet_lot, f.valet_ext) {
                        self.set_valet(u, Some((lot.to_owned(), slot.to_owned())));
                    }
                }
                (Some("bridge" | "exit"), Some(u)) => self.set_valet(u, None),
                _ => {}
            },
            "conference::maintenance" => {
                let Some(name) = f.conf_name else { return };
                match (f.action, uuid) {
                    (Some("add-member"), Some(u)) => {
                        let m = Membership {
                            name: name.to_owned(),
                            domain_hint: f.conf_domain.map(str::to_owned),
                        };
                        self.enter(Kind::Room, u, m);
                    }
                    (Some("del-member"), Some(u)) => self.leave(Kind::Room, u, Some(name)),
                    (Some("conference-destroy"), _) => {
                        let members: Vec<String> = self
                            .features
                            .rooms
                            .get(name)
                            .map(|s| s.iter().cloned().collect())
                            .unwrap_or_default();
                        for u in members {
                            self.leave(Kind::Room, &u, Some(name));
                        }
                    }
                    _ => {}
                }
            }
            "callcenter::info" => {
                let (Some(queue), Some(action)) = (f.cc_queue, f.cc_action) else {
                    return;
                };
                let Some(member) = f.cc_member.or(uuid) else {
                    return;
                };
                match action {
                    "member-queue-start" | "member-queue-resume" => {
                        self.enter(Kind::Queue, member, Membership::plain(queue));
                    }
                    "bridge-agent-start" | "member-queue-end" => {
                        self.leave(Kind::Queue, member, Some(queue));
                    }
                    _ => {}
                }
            }
            "fifo::info" => {
                let (Some(name), Some(action)) = (f.fifo_name, f.fifo_action) else {
                    return;
                };
                match (action, uuid) {
                    ("push", Some(u)) => self.enter(Kind::Queue, u, Membership::plain(name)),
                    ("abort" | "timeout" | "caller_pop" | "bridge-caller-start", Some(u)) => {
                        self.leave(Kind::Queue, u, Some(name));
                    }
                    ("consumer_pop", _) => {
                        if let Some(caller) = f.fifo_caller {
                            self.leave(Kind::Queue, caller, Some(name));
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }

    fn set_valet(&mut self, uuid: &str, spot: Option<(String, String)>) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        if ch.valet == spot {
            return;
        }
        if spot.is_some() {
            self.features.valet.insert(uuid.to_owned());
        } else {
            self.features.valet.remove(uuid);
        }
        ch.valet = spot;
        let call = ch.call;
        self.mark(call);
    }

    /// Puts a known channel in a room or queue (leaving any other).
    fn enter(&mut self, kind: Kind, uuid: &str, m: Membership) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let (slot, map) = match kind {
            Kind::Room => (&mut ch.room, &mut self.features.rooms),
            Kind::Queue => (&mut ch.queue, &mut self.features.queues),
        };
        if slot.as_ref() == Some(&m) {
            return;
        }
        if let Some(old) = slot.take() {
            unlist(map, &old.name, uuid);
        }
        map.entry(m.name.clone())
            .or_default()
            .insert(uuid.to_owned());
        *slot = Some(m);
        let call = ch.call;
        self.mark(call);
    }

    /// Takes a channel out of its room or queue (only of `name` if given).
    fn leave(&mut self, kind: Kind, uuid: &str, name: Option<&str>) {
        let Some(ch) = self.channels.get_mut(uuid) else {
            return;
        };
        let (slot, map) = match kind {
            Kind::Room => (&mut ch.room, &mut self.features.rooms),
            Kind::Queue => (&mut ch.queue, &mut self.features.queues),
        };
        match slot {
            Some(m) if name.is_none_or(|n| n == m.name) => {
                unlist(map, &m.name, uuid);
                *slot = None;
                let call = ch.call;
                self.mark(call);
            }
            _ => {}
        }
    }

    /// Makes the rooms or queues exactly `want` (channel -> name): the
    /// listing is the truth. Unknown channels are skipped.
    fn reconcile(&mut self, kind: Kind, want: HashMap<&str, &str>) {
        let map = match kind {
            Kind::Room => &self.features.rooms,
            Kind::Queue => &self.features.queues,
        };
        let mut stale: Vec<String> = Vec::new();
        for (name, set) in map {
            for u in set {
                if want.get(u.as_str()) != Some(&name.as_str()) {
                    stale.push(u.clone());
                }
            }
        }
        for u in stale {
            self.leave(kind, &u, None);
        }
        for (u, name) in want {
            let current = self.channels.get(u).and_then(|c| match kind {
                Kind::Room => c.room.as_ref(),
                Kind::Queue => c.queue.as_ref(),
            });
            // Keep a live membership (and its domain hint) that agrees.
            if current.is_none_or(|m| m.name != name) {
                self.enter(kind, u, Membership::plain(name));
            }
        }
    }

    /// Valet lots as `valet_info` lists them (the whole truth).
    pub fn apply_valet(&mut self, lots: &[ValetEntry], now_ms: u64) -> Update {
        let want: HashMap<&str, (&str, &str)> = lots
            .iter()
            .map(|e| (e.uuid.as_str(), (e.lot.as_str(), e.slot.as_str())))
            .collect();
        let stale: Vec<String> = self
            .features
            .valet
            .iter()
            .filter(|u| !want.contains_key(u.as_str()))
            .cloned()
            .collect();
        for u in stale {
            self.set_valet(&u, None);
        }
        for (u, (lot, slot)) in want {
            self.set_valet(u, Some((lot.to_owned(), slot.to_owned())));
        }
        self.flush(now_ms)
    }

    /// Conferences as `conference json_list` lists them (the whole truth).
    pub fn apply_conferences(&mut self, confs: &[ConferenceEntry], now_ms: u64) -> Update {
        let want = confs
            .iter()
            .flat_map(|c| c.members.iter().map(|m| (m.as_str(), c.name.as_str())))
            .collect();
        self.reconcile(Kind::Room, want);
        self.flush(now_ms)
    }

    /// Call-center and FIFO queues with their waiting callers (the whole
    /// truth).
    pub fn apply_queues(&mut self, queues: &[QueueEntry], now_ms: u64) -> Update {
        let want = queues
            .iter()
            .flat_map(|q| q.waiting.iter().map(|w| (w.as_str(), q.name.as_str())))
            .collect();
        self.reconcile(Kind::Queue, want);
        self.flush(now_ms)
    }
}

impl Membership {
    fn plain(name: &str) -> Self {
        Membership {
            name: name.to_owned(),
            domain_hint: None,
        }
    }
}
