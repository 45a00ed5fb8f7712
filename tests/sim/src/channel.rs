//! One simulated channel: the data FreeSWITCH keeps per session and puts in
//! every channel event (state, call state, caller profiles, variables).

pub use crate::states::{CallState, CsState, Direction};

/// Timetable of a caller profile (microseconds; 0 = not yet).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Times {
    pub profile_created: i64,
    pub created: i64,
    pub answered: i64,
    pub progress: i64,
    pub progress_media: i64,
    pub hungup: i64,
    pub transferred: i64,
    pub resurrected: i64,
    pub bridged: i64,
    pub last_hold: i64,
    pub hold_accum: i64,
}

/// A caller profile (`Caller-*` / `Other-Leg-*` headers).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Profile {
    pub direction: Option<Direction>,
    pub logical_direction: Option<Direction>,
    pub username: String,
    pub dialplan: String,
    pub cid_name: String,
    pub cid_number: String,
    pub orig_cid_name: String,
    pub orig_cid_number: String,
    pub callee_name: String,
    pub callee_number: String,
    pub network_addr: String,
    pub ani: String,
    pub destination: String,
    pub uuid: String,
    pub source: String,
    /// `Transfer-Source` (set by `uuid_bridge`).
    pub transfer_source: String,
    pub context: String,
    pub chan_name: String,
    /// `Profile-Index`; absent on the copies shown as `Other-Leg`.
    pub index: Option<u32>,
    pub times: Times,
}

/// Whether the `Other-Leg` profile is the originator or the originatee.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtherType {
    /// This leg was originated by the other one.
    Originator,
    /// This leg originated (or was bridged to) the other one.
    Originatee,
}

/// Channel variables in FreeSWITCH order: setting a variable again moves it
/// to the end (FreeSWITCH deletes and re-adds the header).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars(Vec<(String, String)>);

impl Vars {
    /// Sets (and moves to the end) a variable.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| k != name);
        self.0.push((name.to_owned(), value.into()));
    }

    /// Sets many variables in order.
    pub fn extend<'a>(&mut self, pairs: impl IntoIterator<Item = (&'a str, String)>) {
        for (k, v) in pairs {
            self.set(k, v);
        }
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Removes a variable.
    pub fn remove(&mut self, name: &str) {
        self.0.retain(|(k, _)| k != name);
    }

    /// All variables in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// What a leg is doing, for the simulator's own bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Running the dialplan, ringing or talking.
    Normal,
    /// Parked in a valet lot.
    Valet {
        /// Lot name.
        lot: String,
        /// Slot (extension).
        slot: String,
    },
    /// In a conference.
    Conference {
        /// Full conference name (`3000-domain`).
        room: String,
        /// Member id.
        member: u32,
    },
    /// Waiting in a call-center queue.
    CallCenter {
        /// Queue name.
        queue: String,
    },
    /// Waiting in a FIFO.
    Fifo {
        /// FIFO name.
        name: String,
    },
    /// A FIFO consumer bridged to a caller it popped.
    FifoConsumer {
        /// FIFO name.
        name: String,
        /// The caller's leg.
        caller: String,
    },
    /// Parked by `originate ... &park()`.
    Parked,
}

/// A running dialplan application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    /// Application name (`bridge`).
    pub name: String,
    /// Its argument, possibly empty.
    pub data: String,
    /// `Application-UUID`; none for `uuid_bridge` soft executes.
    pub uuid: Option<String>,
}

/// One channel (session) of the simulated box.
#[derive(Clone, Debug)]
pub struct Channel {
    /// `Unique-ID`.
    pub uuid: String,
    /// `Channel-Name`, e.g. `sofia/internal/1000@127.0.0.1`.
    pub name: String,
    /// Call direction.
    pub direction: Direction,
    /// `Channel-State` (the running state).
    pub running: CsState,
    /// `Channel-State-Number` (the requested state).
    pub state: CsState,
    /// `Channel-Call-State`.
    pub callstate: CallState,
    /// Answered (CF_ANSWERED).
    pub answered: bool,
    /// Early media (CF_EARLY_MEDIA).
    pub early: bool,
    /// Hung up (`Answer-State: hangup`).
    pub down: bool,
    /// Hangup cause, once set.
    pub hangup_cause: Option<&'static str>,
    /// `(read, write)` codec names and bit rates, once media is up.
    pub codec: Option<(&'static str, u32)>,
    /// Read codec differs (conference L16).
    pub read_codec: Option<(&'static str, u32)>,
    /// Caller profile (absent until the leg is set up: the first CS_NEW
    /// state event has none).
    pub profile: Option<Profile>,
    /// CF_DIALPLAN: outbound legs that later run an application.
    pub hit_dialplan: bool,
    /// Originator/originatee profile.
    pub other: Option<(OtherType, Profile)>,
    /// Channel variables.
    pub vars: Vars,
    /// The phone user this leg belongs to (caller for inbound, callee for outbound).
    pub user: String,
    /// Bridged (or ringing) peer uuid.
    pub peer: Option<String>,
    /// This leg owns the bridge (`Bridge-A-Unique-ID`; gets CHANNEL_UNBRIDGE).
    pub bridge_a: bool,
    /// What the leg is doing.
    pub activity: Activity,
    /// Currently executing application (`show channels`).
    pub application: Option<App>,
    /// Last application run and its argument (`last_app` / `last_arg`).
    pub last_app: Option<(String, String)>,
    /// PRESENCE_IN `event_count`.
    pub presence_count: u32,
    /// Hold periods (start, end) in µs, for `hold_events`.
    pub holds: Vec<(i64, i64)>,
    /// Hung up by `uuid_kill` (FreeSWITCH sends the BYE) rather than by
    /// the phone.
    pub killed: bool,
}

impl Channel {
    /// `Answer-State`.
    pub fn answer_state(&self) -> &'static str {
        if self.down {
            "hangup"
        } else if self.answered {
            "answered"
        } else if self.early {
            "early"
        } else {
            "ringing"
        }
    }

    /// `Channel-Call-UUID`: `call_uuid` variable, else the channel's own uuid.
    pub fn call_uuid(&self) -> &str {
        self.vars.get("call_uuid").unwrap_or(&self.uuid)
    }

    /// Sets running and requested state.
    pub fn set_state(&mut self, running: CsState, state: CsState) {
        self.running = running;
        self.state = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_move_to_end_when_set_again() {
        let mut v = Vars::default();
        v.set("a", "1");
        v.set("b", "2");
        v.set("a", "3");
        let order: Vec<_> = v.iter().collect();
        assert_eq!(order, vec![("b", "2"), ("a", "3")]);
    }
}
