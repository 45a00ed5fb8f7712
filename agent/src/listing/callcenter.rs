//! mod_callcenter: `callcenter_config queue list` and
//! `callcenter_config queue list members`.
//!
//! Both print pipe-separated tables and end with a `+OK` line. `queue list`
//! always prints its header (`name|strategy|...`); a listing from SQL
//! (`queue list members`) prints the column names only when there is a row,
//! so no member at all is the body `+OK\n` alone. Values are not escaped:
//! a caller id name may hold `|`, and the parser copes by reading columns
//! before `cid_number` from the left and columns after `cid_name` from the
//! right.
//!
//! Member `state` is one of `Unknown`, `Waiting`, `Trying` (an agent is
//! being offered the call), `Answered` (bridged to an agent) or `Abandoned`
//! (the caller left; the row stays for `discard-abandoned-after`). A member
//! counts as waiting when `Waiting` or `Trying`: the same rule as
//! mod_callcenter's own `members-count` event. The caller's channel uuid is
//! `session_uuid` (`uuid` is the member's own id, `CC-Member-UUID`).
//!
//! With a shared callcenter database (ODBC) the table holds other boxes'
//! members too (their `instance_id` differs); the agent keeps only uuids
//! of channels that are live on its own box.

use super::pipe_table::Table;
use super::{ListingError, QueueEntry, QueueKind};

/// Parses `callcenter_config queue list` into queue names, in FreeSWITCH's
/// (hash) order.
pub fn parse_callcenter_queues(body: &str) -> Result<Vec<String>, ListingError> {
    const WHAT: &str = "callcenter queue list";
    let Some(table) = Table::parse(WHAT, body)? else {
        return Err(ListingError::malformed(WHAT, "no header line"));
    };
    let name = table.column("name")?;
    table
        .rows
        .iter()
        .map(|row| {
            table
                .field(row, name)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| ListingError::malformed(WHAT, "row without queue name"))
        })
        .collect()
}

/// Parses `callcenter_config queue list members` into one entry per queue
/// that has members (in any state), listing the waiting ones.
pub fn parse_callcenter_members(body: &str) -> Result<Vec<QueueEntry>, ListingError> {
    const WHAT: &str = "callcenter member list";
    let Some(table) = Table::parse(WHAT, body)? else {
        return Ok(Vec::new());
    };
    let (queue, session, state) = (
        table.column("queue")?,
        table.column("session_uuid")?,
        table.column("state")?,
    );
    let mut out: Vec<QueueEntry> = Vec::new();
    for row in &table.rows {
        let (Some(q), Some(uuid), Some(st)) = (
            table.field(row, queue),
            table.field(row, session),
            table.field(row, state),
        ) else {
            // Fewer fields than columns: a newline inside a value split
            // the row. Losing one member beats losing the whole listing.
            tracing::warn!(row.fields = row.len(), "callcenter member row skipped");
            continue;
        };
        let pos = match out.iter().position(|e| e.name == q) {
            Some(pos) => pos,
            None => {
                out.push(QueueEntry {
                    kind: QueueKind::CallCenter,
                    name: q.to_owned(),
                    waiting: Vec::new(),
                });
                out.len() - 1
            }
        };
        if matches!(st, "Waiting" | "Trying") && !uuid.is_empty() {
            out[pos].waiting.push(uuid.to_owned());
        }
    }
    Ok(out)
}

/// Joins the two listings: every configured queue (empty ones too, so the
/// agent can clear them), then any queue that has members but is no longer
/// configured.
pub fn callcenter_entries(queues: Vec<String>, members: Vec<QueueEntry>) -> Vec<QueueEntry> {
    let mut out: Vec<QueueEntry> = queues
        .into_iter()
        .map(|name| QueueEntry {
            kind: QueueKind::CallCenter,
            name,
            waiting: Vec::new(),
        })
        .collect();
    for m in members {
        match out.iter_mut().find(|e| e.name == m.name) {
            Some(e) => e.waiting = m.waiting,
            None => out.push(m),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::super::captured;
    use super::*;

    const FILE: &str = "07-callcenter.json.txt";

    #[test]
    fn queue_names_from_capture() {
        for file in [FILE, "01-auth-and-api.json.txt"] {
            let body = &captured::replies_to(file, "callcenter_config queue list")[0];
            assert_eq!(parse_callcenter_queues(body).unwrap(), ["support@default"]);
        }
        let empty = "name|strategy|moh_sound\n+OK\n";
        assert!(parse_callcenter_queues(empty).unwrap().is_empty());
    }

    #[test]
    fn answered_member_is_not_waiting() {
        let body =
            &captured::replies_to(FILE, "callcenter_config queue list members support@default")[0];
        let got = parse_callcenter_members(body).unwrap();
        assert_eq!(
            got,
            vec![QueueEntry {
                kind: QueueKind::CallCenter,
                name: "support@default".into(),
                waiting: vec![],
            }]
        );
    }

    #[test]
    fn waiting_and_trying_members_wait_by_session_uuid() {
        let body =
            &captured::replies_to(FILE, "callcenter_config queue list members support@default")[0];
        let caller = "7b926095-b9da-4c03-a9ef-632af7eb2da2";
        for state in ["Waiting", "Trying"] {
            let edited = body.replace("|Answered|", &format!("|{state}|"));
            let got = parse_callcenter_members(&edited).unwrap();
            assert_eq!(got[0].waiting, [caller], "{state}");
        }
        let abandoned = body.replace("|Answered|", "|Abandoned|");
        assert!(
            parse_callcenter_members(&abandoned).unwrap()[0]
                .waiting
                .is_empty()
        );
    }

    #[test]
    fn session_uuid_is_the_callers_channel() {
        // The member's session_uuid is the Unique-ID in its events
        // (CC-Member-Session-UUID), not the member uuid.
        let body =
            &captured::replies_to(FILE, "callcenter_config queue list members support@default")[0];
        let waiting = parse_callcenter_members(&body.replace("|Answered|", "|Waiting|")).unwrap();
        let calls =
            super::super::parse_show_json(&captured::replies_to(FILE, "show calls as json")[0])
                .unwrap();
        assert!(calls.iter().any(|c| c["uuid"] == waiting[0].waiting[0]));
    }

    #[test]
    fn pipes_in_caller_name_and_several_queues() {
        let head = "queue|instance_id|uuid|session_uuid|cid_number|cid_name|system_epoch|joined_epoch|rejoined_epoch|bridge_epoch|abandoned_epoch|base_score|skill_score|serving_agent|serving_system|state|score";
        let body = format!(
            "{head}\n\
             a@d|single_box|m1|s1|1000|Smith | Jones|1|1|0|0|0|0|0|||Waiting|5\n\
             a@d|single_box|m2|s2|1001|x|1|1|0|0|0|0|0|||Answered|4\n\
             b@d|single_box|m3|s3|1||2|2|0|0|0|0|0|||Trying|1\n+OK\n"
        );
        let got = parse_callcenter_members(&body).unwrap();
        let flat: Vec<_> = got
            .iter()
            .map(|e| (e.name.as_str(), e.waiting.clone()))
            .collect();
        assert_eq!(
            flat,
            [
                ("a@d", vec!["s1".to_owned()]),
                ("b@d", vec!["s3".to_owned()])
            ]
        );
        // A row split by a newline is skipped, the rest kept.
        let split = body.replace("Smith | Jones", "Smith\nJones");
        let got = parse_callcenter_members(&split).unwrap();
        assert!(got[0].waiting.is_empty());
        assert_eq!(got[1].waiting, ["s3"]);
    }

    #[test]
    fn no_members_is_bare_ok() {
        assert!(parse_callcenter_members("+OK\n").unwrap().is_empty());
    }

    #[test]
    fn entries_keep_empty_queues() {
        let queues = vec!["a@d".to_owned(), "c@d".to_owned()];
        let members = vec![
            QueueEntry {
                kind: QueueKind::CallCenter,
                name: "a@d".into(),
                waiting: vec!["s1".into()],
            },
            QueueEntry {
                kind: QueueKind::CallCenter,
                name: "gone@d".into(),
                waiting: vec!["s9".into()],
            },
        ];
        let got = callcenter_entries(queues, members);
        let flat: Vec<_> = got
            .iter()
            .map(|e| (e.name.as_str(), e.waiting.len()))
            .collect();
        assert_eq!(flat, [("a@d", 1), ("c@d", 0), ("gone@d", 1)]);
    }

    #[test]
    fn malformed_and_truncated() {
        for body in ["", "junk", "name|strategy\nsupport@default|x\n", "+OK\n"] {
            assert!(
                matches!(
                    parse_callcenter_queues(body),
                    Err(ListingError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        for body in ["", "junk\n+OK\n", "a|b\n1|2\n+OK\n", "queue|x\nq|1\n"] {
            assert!(
                matches!(
                    parse_callcenter_members(body),
                    Err(ListingError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        let body =
            &captured::replies_to(FILE, "callcenter_config queue list members support@default")[0];
        let ok_at = body.trim_end().len() - "+OK".len();
        for cut in 0..ok_at {
            assert!(
                parse_callcenter_members(&body[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let queues = &captured::replies_to(FILE, "callcenter_config queue list")[0];
        captured::assert_prefixes_never_panic(queues, 1, parse_callcenter_queues);
    }
}
