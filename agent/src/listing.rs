//! Parsers for the `api` replies the agent reads at (re)connect: the full
//! truth it reconciles Redis with. Each is pure: text in, typed rows out.
//! (Skeleton: types fixed, parsers being implemented.)

use std::collections::BTreeMap;

/// Why an api body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// FreeSWITCH answered `-ERR ...`.
    #[error("freeswitch error: {0}")]
    Fs(String),
    /// The body does not have the expected shape.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which listing.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// One row of `show channels as json` / `show calls as json`: column -> value.
pub type ShowRow = BTreeMap<String, String>;

/// A parked call from `valet_info`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValetEntry {
    /// Lot name (e.g. `valet_parking_lot`).
    pub lot: String,
    /// Slot (extension, e.g. `6001`).
    pub slot: String,
    /// Parked channel uuid.
    pub uuid: String,
}

/// A conference from `conference json_list`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConferenceEntry {
    /// Full conference name (e.g. `3000-127.0.0.1`).
    pub name: String,
    /// Member channel uuids.
    pub members: Vec<String>,
}

/// Kind of queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    /// mod_callcenter.
    CallCenter,
    /// mod_fifo.
    Fifo,
}

/// A queue and its waiting callers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueEntry {
    /// Which module.
    pub kind: QueueKind,
    /// Queue name as FreeSWITCH names it (`support@default`, `5900`).
    pub name: String,
    /// Uuids of waiting callers.
    pub waiting: Vec<String>,
}

/// Figures from `api status`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoreStatus {
    /// Sessions now.
    pub sessions: u32,
    /// `max-sessions`.
    pub max_sessions: u32,
    /// Sessions per second now.
    pub sps: u32,
    /// Idle CPU percent.
    pub idle_cpu: f64,
    /// Version string, if shown.
    pub version: String,
}
