//! Scripted actions: each emits the event sequence a real box emits for it
//! (see the capture named in each module), and snapshots of the box's
//! calls and channels for test assertions.

pub mod bridge;
pub mod call;
pub mod callcenter;
pub mod conference;
mod conference_events;
pub mod dialplan;
pub mod fifo;
pub mod hangup;
pub mod originate;
pub mod pickup;
pub mod register;
pub mod system;
pub mod valet;

use crate::channel::{Activity, CallState, Channel, Direction};
use crate::state::Core;

/// A call, named by the uuid of the leg that heads it (the caller's leg,
/// or after a pickup / retrieval / FIFO pop the leg that owns the bridge).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub String);

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One channel as the simulator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// `Unique-ID`.
    pub uuid: String,
    /// `Channel-Name`.
    pub name: String,
    /// Direction.
    pub direction: Direction,
    /// The phone user of this leg.
    pub user: String,
    /// `Caller-Destination-Number`.
    pub destination: String,
    /// `Channel-Call-State`.
    pub callstate: CallState,
    /// `Answer-State`.
    pub answer_state: &'static str,
    /// `Channel-Call-UUID`.
    pub call_uuid: String,
    /// Peer leg (ringing or bridged).
    pub peer: Option<String>,
    /// `presence_id` variable.
    pub presence_id: Option<String>,
    /// What the leg is doing.
    pub activity: Activity,
}

/// One call as the simulator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallInfo {
    /// Call id (head leg uuid).
    pub id: CallId,
    /// Head leg then its peer, if any.
    pub legs: Vec<String>,
    /// Calling user.
    pub from: String,
    /// Dialled number.
    pub to: String,
    /// Head leg's call state.
    pub callstate: CallState,
    /// Whether the call is answered.
    pub answered: bool,
    /// What the head leg is doing.
    pub activity: Activity,
}

fn info(c: &Channel) -> ChannelInfo {
    ChannelInfo {
        uuid: c.uuid.clone(),
        name: c.name.clone(),
        direction: c.direction,
        user: c.user.clone(),
        destination: c
            .profile
            .as_ref()
            .map(|p| p.destination.clone())
            .unwrap_or_default(),
        callstate: c.callstate,
        answer_state: c.answer_state(),
        call_uuid: c.call_uuid().to_owned(),
        peer: c.peer.clone(),
        presence_id: c.vars.get("presence_id").map(str::to_owned),
        activity: c.activity.clone(),
    }
}

impl Core {
    /// All channels in creation order.
    pub fn channel_infos(&self) -> Vec<ChannelInfo> {
        self.chans.iter().map(info).collect()
    }

    /// All calls: one per leg that is neither originated by another leg
    /// nor the B side of a bridge.
    pub fn call_infos(&self) -> Vec<CallInfo> {
        self.chans
            .iter()
            .filter(|c| {
                let originated =
                    c.direction == Direction::Outbound && c.vars.get("originator").is_some();
                let callee = !c.bridge_a
                    && c.answered
                    && c.peer
                        .as_deref()
                        .and_then(|p| self.chan(p))
                        .is_some_and(|p| p.bridge_a);
                !originated && !callee
            })
            .map(|c| {
                let mut legs = vec![c.uuid.clone()];
                legs.extend(c.peer.iter().filter(|p| self.chan(p).is_some()).cloned());
                CallInfo {
                    id: CallId(c.uuid.clone()),
                    legs,
                    from: c.user.clone(),
                    to: c
                        .profile
                        .as_ref()
                        .map(|p| p.destination.clone())
                        .unwrap_or_default(),
                    callstate: c.callstate,
                    answered: c.answered,
                    activity: c.activity.clone(),
                }
            })
            .collect()
    }
}
