//! The call model of one FreeSWITCH box: pure, synchronous, no I/O.
//!
//! [`Model::apply`] takes one ESL event and returns the exact field writes
//! it caused ([`Update`]); [`Model::image`] returns everything published, for
//! a resync or a republish. A resync builds a fresh model and feeds it the
//! snapshot (`uuid_dump` output as `CHANNEL_DATA` events, then the valet,
//! conference, queue and status listings) through the same code.
//!
//! * `facts`: one pass over an event's headers.
//! * `channel`: a leg and how events change it.
//! * `lifecycle`: legs appearing, joining calls, merging, going away.
//! * `call`: a call's state and record, and what it publishes.
//! * `index`: the incremental diff against what was published.
//! * `features`: valet lots, conference rooms, call-center and FIFO queues.
//! * `members`: pickup-group membership learnt from registrations and calls.
//! * `status`: the node status (load figures, counts, ESL link).
//!
//! What is published, in short (checked against the captures):
//! * A call is the set of legs linked by `variable_originator`,
//!   `Other-Leg-Unique-ID`, `CHANNEL_BRIDGE` (and `variable_bridge_to` in a
//!   snapshot); it is named after its oldest leg and ends with its last.
//!   After an intercept the picker's leg joins the picked call.
//! * State, first match: valet lot -> `parked`; conference -> `conference`;
//!   queue -> `queued`; a placed leg not yet answered -> `ringing`/`early`;
//!   answered with a leg held -> `held`, parked by `park` and unbridged ->
//!   `parked`, else `answered`; nobody answered yet -> `ringing`/`early`.
//! * `Ringing`: one entry per extension a placed, unanswered leg rings
//!   (`cfg.ext_var`), oldest first. `Groups`: calls with `cfg.group_var`
//!   that ring, are answered or held, in creation order (newest last).
//! * `Rooms`/`Queues`: member counts under the name without the vanilla
//!   domain suffix (`3000-dom` -> `dom/3000`, `5900@dom` -> `dom/5900`).
//! * Domain: `variable_domain_name`, else `variable_dialed_domain`, else
//!   `cfg.default_domain`, else `default` (never the `presence_id` host).

mod call;
mod channel;
mod facts;
mod features;
mod index;
mod lifecycle;
mod members;
mod status;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};

use locus_esl::Event;
use locus_schema::{EslLink, NodeChange, NodeImage, NodeStatus, RegClaim};
use serde::Deserialize;

use self::call::Call;
use self::channel::{CallId, Channel};
use self::facts::Facts;
use self::features::Features;
use self::index::Publisher;

/// Channel variable names the model reads (configurable because
/// dialplans other than the vanilla one use other names).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Variable holding the dialled extension (`**EXT` target).
    pub ext_var: String,
    /// Variable holding the called party's pickup group (`*8` target).
    pub group_var: String,
    /// Directory variable holding a user's own pickup group.
    pub caller_group_var: String,
    /// Domain for calls whose channels name none.
    pub default_domain: Option<String>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            ext_var: "dialed_extension".into(),
            group_var: "called_party_callgroup".into(),
            caller_group_var: "callgroup".into(),
            default_domain: None,
        }
    }
}

/// A change to this node's membership claims (`{id}:members`), for the
/// publisher; it keeps the claims apart from the model's tables because
/// they outlive a resync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberOp {
    /// The user registered here (`reg`), or a call of the user showed its
    /// groups (`reg` is `None`). Non-empty `groups` replace the known ones.
    Add {
        /// SIP domain.
        domain: String,
        /// Extension (user).
        ext: String,
        /// Its pickup groups.
        groups: Vec<String>,
        /// The registration, when a `sofia::register` caused this.
        reg: Option<RegClaim>,
    },
    /// A registration here ended (`call_id`); the claim goes with the
    /// user's last registration. `None`: every registration ended.
    Remove {
        /// SIP domain.
        domain: String,
        /// Extension (user).
        ext: String,
        /// Call-ID of the registration that ended.
        call_id: Option<String>,
    },
    /// Groups unknown: the agent should ask FreeSWITCH (`user_data`), then
    /// add the claim with `reg`.
    Lookup {
        /// SIP domain.
        domain: String,
        /// Extension (user).
        ext: String,
        /// The registration that caused the lookup.
        reg: Option<RegClaim>,
    },
}

/// What one input changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// Writes to the node's keys (one atomic change).
    pub change: NodeChange,
    /// Group membership changes.
    pub members: Vec<MemberOp>,
}

impl Update {
    /// True when there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.change.is_empty() && self.members.is_empty()
    }
}

/// How many removed channel uuids are remembered, so that a late event
/// about a channel already gone cannot bring it back.
const TOMBSTONES: usize = 4096;

/// The live model of one box.
#[derive(Debug)]
pub struct Model {
    cfg: ModelConfig,
    channels: HashMap<String, Channel>,
    calls: HashMap<CallId, Call>,
    /// Uuid of a channel not seen yet -> the call it will join.
    links: HashMap<String, CallId>,
    next_call: CallId,
    features: Features,
    publisher: Publisher,
    dirty: BTreeSet<CallId>,
    status: NodeStatus,
    published_status: NodeStatus,
    members: Vec<MemberOp>,
    /// Last membership announced per (domain, ext), to not repeat it.
    known_members: HashMap<(String, String), Vec<String>>,
    tombstones: VecDeque<String>,
    tombstone_set: HashSet<String>,
}

impl Model {
    /// An empty model. `base` carries the fields the model does not own
    /// (`sip_uri`, `role`, `state`, `weight`, `esl`).
    pub fn new(cfg: ModelConfig, base: NodeStatus) -> Self {
        let status = NodeStatus {
            calls: 0,
            channels: 0,
            ..base
        };
        Model {
            cfg,
            channels: HashMap::new(),
            calls: HashMap::new(),
            links: HashMap::new(),
            next_call: 1,
            features: Features::default(),
            publisher: Publisher::default(),
            dirty: BTreeSet::new(),
            published_status: status.clone(),
            status,
            members: Vec::new(),
            known_members: HashMap::new(),
            tombstones: VecDeque::new(),
            tombstone_set: HashSet::new(),
        }
    }

    /// Applies one event; returns exactly the fields it changed.
    pub fn apply(&mut self, ev: &Event, now_ms: u64) -> Update {
        let f = Facts::read(ev, &self.cfg);
        match f.name {
            "HEARTBEAT" => self.on_heartbeat(&f),
            "CUSTOM" => self.on_custom(&f, now_ms),
            name if lifecycle::is_channel_event(name) => self.on_channel(&f, now_ms),
            _ => {}
        }
        self.flush(now_ms)
    }

    /// Sets the ESL link state.
    pub fn set_esl(&mut self, link: EslLink, now_ms: u64) -> Update {
        self.status.esl = link;
        self.flush(now_ms)
    }

    /// Everything published: what a resync or republish writes.
    pub fn image(&self) -> NodeImage {
        NodeImage {
            status: self.status.clone(),
            tables: self.publisher.tables(),
        }
    }

    /// The node status as last published.
    pub fn status(&self) -> NodeStatus {
        self.status.clone()
    }

    /// Live channels.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Live calls.
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// The tables computed from scratch from the current calls: what the
    /// incremental image must always equal.
    #[cfg(test)]
    pub(crate) fn recomputed_tables(
        &self,
    ) -> std::collections::BTreeMap<locus_schema::Table, std::collections::BTreeMap<String, String>>
    {
        let mut p = Publisher::default();
        for (id, call) in &self.calls {
            p.set(*id, call::items(call, &self.channels, &self.cfg));
        }
        p.flush();
        p.tables()
    }

    fn mark(&mut self, call: CallId) {
        self.dirty.insert(call);
    }

    /// Turns the dirty calls into field operations.
    fn flush(&mut self, now_ms: u64) -> Update {
        for id in std::mem::take(&mut self.dirty) {
            let items = match self.calls.get(&id) {
                Some(call) => call::items(call, &self.channels, &self.cfg),
                None => Vec::new(),
            };
            self.publisher.set(id, items);
        }
        let ops = self.publisher.flush();
        let status = self.take_status(now_ms);
        Update {
            change: NodeChange { ops, status },
            members: std::mem::take(&mut self.members),
        }
    }
}
