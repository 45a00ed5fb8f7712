//! `conference json_list`: conferences and their members.
//!
//! mod_conference prints a cJSON array, pretty-printed with tabs, `[]` when
//! there is no conference (no trailing newline either way). Each member is
//! `{"type":"caller","uuid":...}` for a channel; recordings are members of
//! type `recording_node` with no uuid, and a channel-less member that is
//! not recording is an empty object `{}`. Only channels are kept.

use serde_json::Value;

use super::{ConferenceEntry, ListingError, check_api_error};

const WHAT: &str = "conference json_list";

/// Parses a `conference json_list` body into conferences with their
/// channel members' uuids.
pub fn parse_conference_json_list(body: &str) -> Result<Vec<ConferenceEntry>, ListingError> {
    let body = check_api_error(body)?;
    let root: Value =
        serde_json::from_str(body).map_err(|e| ListingError::malformed(WHAT, e.to_string()))?;
    let Value::Array(confs) = root else {
        return Err(ListingError::malformed(WHAT, "not a JSON array"));
    };
    confs.iter().map(conference).collect()
}

fn conference(conf: &Value) -> Result<ConferenceEntry, ListingError> {
    let name = conf
        .get("conference_name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ListingError::malformed(WHAT, "conference without conference_name"))?;
    let members = match conf.get("members") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(m)) => m.as_slice(),
        Some(_) => return Err(ListingError::malformed(WHAT, "members is not an array")),
    };
    let members = members
        .iter()
        .filter(|m| matches!(m.get("type").and_then(Value::as_str), Some("caller") | None))
        .filter_map(|m| m.get("uuid").and_then(Value::as_str))
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
        .collect();
    Ok(ConferenceEntry {
        name: name.to_owned(),
        members,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::super::captured;
    use super::*;

    #[test]
    fn two_members_then_none() {
        let bodies = captured::replies_to("06-conference.json.txt", "conference json_list");
        assert!(bodies[0].contains("\t\t\"conference_name\":\t"));
        let confs = parse_conference_json_list(&bodies[0]).unwrap();
        assert_eq!(
            confs,
            vec![ConferenceEntry {
                name: "3000-127.0.0.1".into(),
                members: vec![
                    "0d8a0164-9f13-4416-8ed0-2977e69883ad".into(),
                    "ca4ae465-ac41-4299-a818-04391ca27273".into(),
                ],
            }]
        );
        assert_eq!(bodies[1], "[]");
        assert!(parse_conference_json_list(&bodies[1]).unwrap().is_empty());
    }

    #[test]
    fn members_agree_with_conference_list() {
        // The text `conference list` of the same moment names the same
        // uuids in its third `;` field.
        let text = &captured::replies_to("06-conference.json.txt", "conference list")[0];
        let listed: Vec<&str> = text
            .lines()
            .skip(1)
            .filter_map(|l| l.split(';').nth(2))
            .collect();
        let json = &captured::replies_to("06-conference.json.txt", "conference json_list")[0];
        let confs = parse_conference_json_list(json).unwrap();
        assert_eq!(confs[0].members, listed);
    }

    #[test]
    fn member_is_a_live_channel() {
        let file = "10-concurrent-calls.json.txt";
        let confs =
            parse_conference_json_list(&captured::replies_to(file, "conference json_list")[0])
                .unwrap();
        assert_eq!(confs.len(), 1);
        assert_eq!(confs[0].name, "3001-127.0.0.1");
        let chans =
            super::super::parse_show_json(&captured::replies_to(file, "show channels as json")[0])
                .unwrap();
        assert!(chans.iter().any(|r| r["uuid"] == confs[0].members[0]));
    }

    #[test]
    fn non_channel_members_are_ignored() {
        let body = r#"[{"conference_name":"r","members":[
            {"type":"recording_node","record_path":"/tmp/x.wav","join_time":3},
            {},
            {"type":"caller","id":1,"uuid":"u1"}]},
            {"conference_name":"empty"}]"#;
        let confs = parse_conference_json_list(body).unwrap();
        assert_eq!(confs[0].members, ["u1"]);
        assert!(confs[1].members.is_empty());
    }

    #[test]
    fn malformed_and_truncated() {
        for body in [
            "",
            "{}",
            "junk",
            "[{}]",
            "[{\"conference_name\":3}]",
            "[{\"conference_name\":\"a\",\"members\":{}}]",
            "+OK No active conferences.\n",
        ] {
            assert!(
                matches!(
                    parse_conference_json_list(body),
                    Err(ListingError::Malformed { .. })
                ),
                "{body:?}"
            );
        }
        let body = &captured::replies_to("06-conference.json.txt", "conference json_list")[0];
        for cut in (0..body.len()).step_by(5) {
            assert!(
                parse_conference_json_list(&body[..cut]).is_err(),
                "cut at {cut}"
            );
        }
    }
}
