//! Test support: the `api` replies recorded in the ESL captures, paired with
//! the commands that asked for them.
//!
//! Every command the client writes gets exactly one reply, in order: a
//! `command/reply` (auth, event, bgapi, exit, unknown commands) or an
//! `api/response`. Events and notices can land in between and are skipped.

use std::collections::VecDeque;

use locus_esl::capture::{self, Direction};

/// One `api` command and the body of its `api/response`.
pub(crate) struct ApiReply {
    /// The command without the `api ` prefix (`show calls as json`).
    pub command: String,
    /// The exact body.
    pub body: String,
}

/// All api replies of a capture file, in order.
pub(crate) fn api_replies(file: &str) -> Vec<ApiReply> {
    let path = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join(file);
    let records = capture::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut pending = VecDeque::new();
    let mut out = Vec::new();
    for record in &records {
        let text = String::from_utf8_lossy(&record.data);
        match record.direction {
            Direction::ClientToServer => {
                for cmd in text.split("\n\n").map(str::trim).filter(|c| !c.is_empty()) {
                    pending.push_back(cmd.to_owned());
                }
            }
            Direction::ServerToClient => {
                let (head, rest) = text.split_once("\n\n").unwrap_or((&text, ""));
                let header = |name: &str| {
                    head.lines()
                        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
                };
                match header("Content-Type") {
                    Some("command/reply") => {
                        pending.pop_front();
                    }
                    Some("api/response") => {
                        let cmd = pending.pop_front().expect("reply without command");
                        let len: usize = header("Content-Length").unwrap().parse().unwrap();
                        assert_eq!(rest.len(), len, "record is one message");
                        if let Some(c) = cmd.strip_prefix("api ") {
                            out.push(ApiReply {
                                command: c.to_owned(),
                                body: rest.to_owned(),
                            });
                        }
                    }
                    _ => {}
                }
            }
            Direction::Eof => {}
        }
    }
    out
}

/// Bodies of the replies to one exact command, in order.
pub(crate) fn replies_to(file: &str, command: &str) -> Vec<String> {
    let out: Vec<String> = api_replies(file)
        .into_iter()
        .filter(|r| r.command == command)
        .map(|r| r.body)
        .collect();
    assert!(!out.is_empty(), "{file} has no reply to {command:?}");
    out
}

/// Every capture file with api replies.
pub(crate) const FILES: &[&str] = &[
    "01-auth-and-api.json.txt",
    "05-valet-park.json.txt",
    "06-conference.json.txt",
    "07-callcenter.json.txt",
    "08-fifo.json.txt",
    "10-concurrent-calls.json.txt",
    "12-hold-unhold.json.txt",
    "13-originate-park.json.txt",
    "20-farm-group-intercept-boxA.json.txt",
    "21-farm-directed-intercept-boxA.json.txt",
    "22-farm-intercept-wrong-box-boxB.json.txt",
];

/// Feeds every prefix of `body` (every `step` bytes) to `parse`: none may
/// panic (the result itself is not checked here).
pub(crate) fn assert_prefixes_never_panic<T>(
    body: &str,
    step: usize,
    parse: impl Fn(&str) -> Result<T, super::ListingError>,
) {
    let mut cut = 0;
    while cut < body.len() {
        if body.is_char_boundary(cut) {
            let _ = parse(&body[..cut]);
        }
        cut += step;
    }
}
