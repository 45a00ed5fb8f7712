//! Parsers for the `api` replies the agent reads at (re)connect: the full
//! truth it reconciles Redis with. Each is pure: text in, typed rows out,
//! and any input (truncated, junk, `-ERR ...`) gives an error, never a panic.
//!
//! The commands to send are [`resync_commands`] (plus [`uuid_dump`] per live
//! channel); each is sent as `api <command>\n\n` and answered by one
//! `api/response` whose body goes to the matching parser. Every parser first
//! runs [`check_api_error`], so a missing module shows up as an error for
//! which [`is_not_loaded`] is true: the agent reads that as "no entries".
//!
//! Formats were checked against the captures in `shared/fixtures/esl/` and,
//! where those show no example, against FreeSWITCH v1.10.12's source.

mod callcenter;
mod conference;
mod dump;
mod fifo;
mod pipe_table;
mod show;
mod status;
mod valet;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod captured;

use std::collections::BTreeMap;

pub use callcenter::{callcenter_entries, parse_callcenter_members, parse_callcenter_queues};
pub use conference::parse_conference_json_list;
pub use dump::parse_uuid_dump_json;
pub use fifo::parse_fifo_list;
pub use show::parse_show_json;
pub use status::{parse_status, parse_version};
pub use valet::parse_valet_info;

/// `show channels as json`: one row per channel ([`parse_show_json`]).
pub const SHOW_CHANNELS: &str = "show channels as json";
/// `show registrations as json`: one row per registration (the core's
/// `registrations` table that sofia fills: `reg_user`, `realm`, `token` =
/// Call-ID, `url` = `sofia/<profile>/<contact>`).
pub const SHOW_REGISTRATIONS: &str = "show registrations as json";
/// `show calls as json`: one row per call, b-leg columns prefixed `b_`.
pub const SHOW_CALLS: &str = "show calls as json";
/// Parked calls of every lot ([`parse_valet_info`]).
pub const VALET_INFO: &str = "valet_info";
/// Conferences and their members ([`parse_conference_json_list`]).
pub const CONFERENCE_LIST: &str = "conference json_list";
/// Callcenter queue names ([`parse_callcenter_queues`]). Needed besides
/// [`CALLCENTER_MEMBERS`] because that lists only queues with members.
pub const CALLCENTER_QUEUES: &str = "callcenter_config queue list";
/// Members of every callcenter queue ([`parse_callcenter_members`]).
/// Without a queue name mod_callcenter selects all rows of its `members`
/// table (`ORDER BY queue, score DESC`), so one command covers all queues;
/// `member list` exists only in the JSON api (`json {...}`).
pub const CALLCENTER_MEMBERS: &str = "callcenter_config queue list members";
/// Fifos and their waiting callers ([`parse_fifo_list`]).
pub const FIFO_LIST: &str = "fifo list";
/// Load and version ([`parse_status`]).
pub const STATUS: &str = "status";
/// The version as HEARTBEAT spells it.
pub const VERSION: &str = "version";

/// The commands of a resync, in the order the agent should send them.
pub fn resync_commands() -> &'static [&'static str] {
    &[
        STATUS,
        VERSION,
        SHOW_CHANNELS,
        SHOW_CALLS,
        VALET_INFO,
        CONFERENCE_LIST,
        CALLCENTER_QUEUES,
        CALLCENTER_MEMBERS,
        FIFO_LIST,
    ]
}

/// The command that dumps one channel as a JSON event
/// ([`parse_uuid_dump_json`]).
pub fn uuid_dump(uuid: &str) -> String {
    format!("uuid_dump {uuid} json")
}

/// Why an api body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ListingError {
    /// FreeSWITCH answered `-ERR ...` (or `-USAGE: ...`); holds the text
    /// after `-ERR `, e.g. `valet_info Command not found!`.
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

impl ListingError {
    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            detail: detail.into(),
        }
    }
}

/// Passes a body through unless FreeSWITCH reported an error in it.
///
/// Api errors come inside an `api/response`, not as a `command/reply`:
/// `-ERR <cmd> Command not found!` (module not loaded, or its api refused
/// to run), `-ERR no reply` (the api wrote nothing), `-ERR No such
/// channel!` (`uuid_dump` of a gone uuid), `-USAGE: ...` (bad arguments).
/// `show ... as json` may even put `-ERR SQL Error [...]` before its JSON.
pub fn check_api_error(body: &str) -> Result<&str, ListingError> {
    let head = body.trim_start();
    if let Some(rest) = head.strip_prefix("-ERR") {
        return Err(ListingError::Fs(rest.trim().to_owned()));
    }
    if head.starts_with("-USAGE") {
        return Err(ListingError::Fs(head.trim_end().to_owned()));
    }
    Ok(body)
}

/// True when the error says the api command does not exist: the module
/// (mod_valet_parking, mod_conference, mod_callcenter, mod_fifo) is not
/// loaded, so the listing is empty rather than unknown.
pub fn is_not_loaded(err: &ListingError) -> bool {
    // mod_event_socket writes "-ERR <cmd> Command not found!\n" whenever
    // switch_api_execute fails to find or run the command.
    matches!(err, ListingError::Fs(msg) if msg.ends_with("Command not found!"))
}

/// True when `uuid_dump` found no such channel: it ended between the
/// listing and the dump, which is not an error for a resync.
pub fn is_no_such_channel(err: &ListingError) -> bool {
    matches!(err, ListingError::Fs(msg) if msg.starts_with("No such channel"))
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
    /// Queue name as FreeSWITCH names it (`support@default`,
    /// `5900@127.0.0.1`), the same as `CC-Queue` / `FIFO-Name` in events.
    pub name: String,
    /// Uuids of waiting callers' channels.
    pub waiting: Vec<String>,
}

/// Figures from `api status`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CoreStatus {
    /// Sessions now.
    pub sessions: u32,
    /// `max-sessions`.
    pub max_sessions: u32,
    /// Sessions per second now (the last second).
    pub sps: u32,
    /// `sessions-per-second` limit.
    pub max_sps: u32,
    /// Idle CPU percent.
    pub idle_cpu: f64,
    /// Version string as `status` prints it (`1.10.12-release  64bit`).
    pub version: String,
    /// `is ready` (false while starting up or shutting down).
    pub ready: bool,
    /// Uptime in milliseconds: a smaller value than last time means
    /// FreeSWITCH restarted.
    pub uptime_ms: u64,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::*;

    #[test]
    fn api_errors_from_captures_are_fs_errors() {
        let replies = captured::api_replies("01-auth-and-api.json.txt");
        let unknown = replies
            .iter()
            .find(|r| r.command.starts_with("this_command_does_not_exist"))
            .unwrap();
        let err = check_api_error(&unknown.body).unwrap_err();
        assert!(is_not_loaded(&err), "{err}");
        let no_reply = captured::replies_to("01-auth-and-api.json.txt", "global_getvar switchname");
        let err = check_api_error(&no_reply[0]).unwrap_err();
        assert!(matches!(&err, ListingError::Fs(m) if m == "no reply"));
        assert!(!is_not_loaded(&err));
    }

    #[test]
    fn every_parser_reports_a_missing_module() {
        let body = "-ERR valet_info Command not found!\n";
        assert!(is_not_loaded(&parse_valet_info(body).unwrap_err()));
        assert!(is_not_loaded(&parse_show_json(body).unwrap_err()));
        assert!(is_not_loaded(
            &parse_conference_json_list(body).unwrap_err()
        ));
        assert!(is_not_loaded(&parse_fifo_list(body).unwrap_err()));
        assert!(is_not_loaded(&parse_callcenter_queues(body).unwrap_err()));
        assert!(is_not_loaded(&parse_callcenter_members(body).unwrap_err()));
        assert!(is_not_loaded(&parse_status(body).unwrap_err()));
        assert!(is_not_loaded(&parse_uuid_dump_json(body).unwrap_err()));
    }

    #[test]
    fn ok_bodies_pass_and_usage_is_an_error() {
        assert_eq!(check_api_error("\n0 total.\n").unwrap(), "\n0 total.\n");
        assert_eq!(check_api_error("").unwrap(), "");
        let err = check_api_error("-USAGE: <uuid> [format]\n").unwrap_err();
        assert!(matches!(&err, ListingError::Fs(m) if m == "-USAGE: <uuid> [format]"));
        assert!(is_no_such_channel(
            &check_api_error("-ERR No such channel!\n").unwrap_err()
        ));
    }

    #[test]
    fn resync_commands_are_the_captured_ones() {
        // Every resync command except the member listing was sent in the
        // captures and got a non-error reply; checks for typos.
        let mut seen = Vec::new();
        for file in ["01-auth-and-api.json.txt", "07-callcenter.json.txt"] {
            for r in captured::api_replies(file) {
                if check_api_error(&r.body).is_ok() {
                    seen.push(r.command);
                }
            }
        }
        for cmd in resync_commands() {
            if *cmd == CALLCENTER_MEMBERS {
                continue;
            }
            assert!(seen.iter().any(|s| s == cmd), "{cmd} not in captures");
        }
        assert_eq!(uuid_dump("abc"), "uuid_dump abc json");
    }
}
