//! Channels appearing, changing, joining calls and going away.
//!
//! FreeSWITCH says which call a channel belongs to in several ways, none
//! complete: a B-leg names its A-leg in `variable_originator` and
//! `Other-Leg-Unique-ID`; `Channel-Call-UUID` names the bridge partner's
//! call but reverts at unbridge; `CHANNEL_BRIDGE` joins two legs that may
//! have been separate calls (intercept, valet retrieve, call center). The
//! model joins legs on all of these and never splits a call: a call ends
//! when its last leg does.

use super::Model;
use super::call::Call;
use super::channel::{CallId, Channel};
use super::facts::Facts;

/// Event names that describe one channel (the model reads their headers).
pub(crate) fn is_channel_event(name: &str) -> bool {
    matches!(
        name,
        "CHANNEL_CREATE"
            | "CHANNEL_DATA"
            | "CHANNEL_OUTGOING"
            | "CHANNEL_ORIGINATE"
            | "CHANNEL_PROGRESS"
            | "CHANNEL_PROGRESS_MEDIA"
            | "CHANNEL_ANSWER"
            | "CHANNEL_BRIDGE"
            | "CHANNEL_UNBRIDGE"
            | "CHANNEL_HOLD"
            | "CHANNEL_UNHOLD"
            | "CHANNEL_PARK"
            | "CHANNEL_UNPARK"
            | "CHANNEL_CALLSTATE"
            | "CHANNEL_STATE"
            | "CHANNEL_EXECUTE"
            | "CHANNEL_EXECUTE_COMPLETE"
            | "CALL_UPDATE"
            | "CHANNEL_HANGUP"
            | "CHANNEL_HANGUP_COMPLETE"
            | "CHANNEL_DESTROY"
    )
}

/// Events that may introduce a channel the model has not seen (the agent
/// connected mid-call, or a snapshot). `CHANNEL_STATE` fires before
/// `CHANNEL_CREATE`, with no variables yet, so it may not.
fn may_create(f: &Facts<'_>) -> bool {
    !f.is_ending()
        && match f.name {
            "CHANNEL_STATE" | "CHANNEL_UNBRIDGE" | "CHANNEL_HANGUP" => false,
            "CHANNEL_HANGUP_COMPLETE" | "CHANNEL_DESTROY" => false,
            // CUSTOM events of the modules we follow carry channel data.
            _ => f.channel_state.is_some() || f.answer_state.is_some(),
        }
}

impl Model {
    /// A channel event.
    pub(crate) fn on_channel(&mut self, f: &Facts<'_>, now_ms: u64) {
        let Some(uuid) = f.uuid else { return };
        if matches!(f.name, "CHANNEL_HANGUP_COMPLETE" | "CHANNEL_DESTROY") {
            self.remove_channel(uuid);
            return;
        }
        if !self.touch_channel(uuid, f, now_ms) {
            return;
        }
        match f.name {
            "CHANNEL_BRIDGE" => {
                let (a, b) = match (f.bridge_a, f.bridge_b) {
                    (Some(a), Some(b)) => (a, b),
                    _ => (uuid, f.other_leg.unwrap_or(uuid)),
                };
                self.set_bridged(a, true);
                self.set_bridged(b, true);
                self.join(a, b);
            }
            "CHANNEL_UNBRIDGE" => {
                if let Some(other) = f.bridge_b.or(f.other_leg).filter(|o| *o != uuid) {
                    self.set_bridged(other, false);
                }
                if let Some(other) = f.bridge_a.filter(|o| *o != uuid) {
                    self.set_bridged(other, false);
                }
            }
            "CHANNEL_DATA" => {
                if let Some(partner) = f.vars.bridge_to {
                    self.join(uuid, partner);
                }
            }
            _ => {}
        }
    }

    /// Creates the channel if needed and allowed, then applies `f` to it.
    /// Returns false when the channel is unknown and stays so.
    pub(crate) fn touch_channel(&mut self, uuid: &str, f: &Facts<'_>, now_ms: u64) -> bool {
        if !self.channels.contains_key(uuid) {
            if !may_create(f) || self.tombstone_set.contains(uuid) {
                return false;
            }
            self.create_channel(uuid, f, now_ms);
        }
        let Some(ch) = self.channels.get_mut(uuid) else {
            return false;
        };
        let changed = ch.update(f, now_ms);
        let call = ch.call;
        if changed {
            self.mark(call);
        }
        self.learn_member(uuid);
        // `Other-Leg-Unique-ID` is FreeSWITCH's own notion of the partner
        // leg: the originator of a B-leg, the bridged leg, the intercepted
        // leg as soon as `intercept` starts, the FIFO caller as soon as a
        // consumer takes it. Joining on it from every event makes a
        // snapshot (which only has this header) agree with the live stream,
        // whichever events the agent subscribed to.
        if let Some(other) = f.other_leg {
            self.join(uuid, other);
        }
        true
    }

    fn create_channel(&mut self, uuid: &str, f: &Facts<'_>, now_ms: u64) {
        // Channels this one says it belongs with, strongest first.
        let outbound = f.direction == Some("outbound");
        let mut hints: Vec<&str> = Vec::with_capacity(4);
        hints.extend(f.vars.originator);
        if outbound {
            hints.extend(f.other_leg);
        }
        hints.extend(f.call_uuid);
        hints.extend(f.vars.bridge_to);
        hints.retain(|h| *h != uuid);

        let known = |m: &Model, h: &str| {
            m.channels
                .get(h)
                .map(|c| c.call)
                .or_else(|| m.links.get(h).copied())
        };
        let mut call = hints.iter().find_map(|h| known(self, h));
        if let Some(waiting) = self.links.remove(uuid) {
            match call {
                Some(c) if c != waiting => self.merge(c, waiting),
                Some(_) => {}
                None => call = Some(waiting),
            }
        }
        let id = call.unwrap_or_else(|| {
            let id = self.next_call;
            self.next_call += 1;
            self.calls.insert(id, Call::default());
            id
        });
        // The first hint names the call this channel was placed for; if
        // that channel is unknown, remember that it belongs here.
        if let Some(h) = hints.first()
            && known(self, h).is_none()
        {
            self.await_leg(h, id);
        }
        tracing::debug!(channel.uuid = uuid, "channel appears");
        let ch = Channel::new(uuid, id, f, now_ms);
        self.channels.insert(uuid.to_owned(), ch);
        if let Some(c) = self.calls.get_mut(&id) {
            c.legs.push(uuid.to_owned());
        }
        self.mark(id);
    }

    fn set_bridged(&mut self, uuid: &str, on: bool) {
        if let Some(ch) = self.channels.get_mut(uuid)
            && ch.bridged != on
        {
            ch.bridged = on;
            let call = ch.call;
            self.mark(call);
        }
    }

    /// Remembers that the unseen channel `uuid` belongs to call `call`
    /// (unless it is already promised to one).
    fn await_leg(&mut self, uuid: &str, call: CallId) {
        if self.links.contains_key(uuid) {
            return;
        }
        self.links.insert(uuid.to_owned(), call);
        if let Some(c) = self.calls.get_mut(&call) {
            c.awaiting.push(uuid.to_owned());
        }
    }

    /// Puts the legs `a` and `b` in one call. An unknown `b` is remembered
    /// as belonging to `a`'s call.
    fn join(&mut self, a: &str, b: &str) {
        let Some(ca) = self.channels.get(a).map(|c| c.call) else {
            return;
        };
        match self.channels.get(b).map(|c| c.call) {
            Some(cb) if cb != ca => self.merge(ca, cb),
            Some(_) => {}
            None if a != b => self.await_leg(b, ca),
            None => {}
        }
    }

    /// Merges call `b` into call `a` (`b` keeps nothing: its id is dropped).
    fn merge(&mut self, a: CallId, b: CallId) {
        if a == b || !self.calls.contains_key(&a) {
            return;
        }
        let Some(gone) = self.calls.remove(&b) else {
            return;
        };
        for leg in &gone.legs {
            if let Some(ch) = self.channels.get_mut(leg) {
                ch.call = a;
            }
        }
        for w in &gone.awaiting {
            if let Some(slot) = self.links.get_mut(w)
                && *slot == b
            {
                *slot = a;
            }
        }
        if let Some(call) = self.calls.get_mut(&a) {
            call.legs.extend(gone.legs);
            call.awaiting.extend(gone.awaiting);
        }
        self.mark(a);
        self.mark(b);
    }

    /// Removes a channel (`CHANNEL_HANGUP_COMPLETE` / `CHANNEL_DESTROY`);
    /// a call goes with its last leg.
    pub(crate) fn remove_channel(&mut self, uuid: &str) {
        let Some(ch) = self.channels.remove(uuid) else {
            return;
        };
        self.features.forget(&ch);
        if self.tombstones.len() >= super::TOMBSTONES
            && let Some(old) = self.tombstones.pop_front()
        {
            self.tombstone_set.remove(&old);
        }
        self.tombstones.push_back(uuid.to_owned());
        self.tombstone_set.insert(uuid.to_owned());
        self.mark(ch.call);
        let empty = match self.calls.get_mut(&ch.call) {
            Some(call) => {
                call.legs.retain(|l| l != uuid);
                call.legs.is_empty()
            }
            None => false,
        };
        if empty && let Some(call) = self.calls.remove(&ch.call) {
            for w in call.awaiting {
                if self.links.get(&w) == Some(&ch.call) {
                    self.links.remove(&w);
                }
            }
        }
        tracing::debug!(channel.uuid = uuid, "channel gone");
    }
}
