//! `uuid_dump <uuid> json`: one channel's full state as an event.
//!
//! Not in the captures; read from FreeSWITCH v1.10.12's source (full notes
//! for the simulator: `docs/freeswitch-uuid-dump.md`). `uuid_dump_function`
//! (mod_commands.c) creates a `CHANNEL_DATA` event, fills it with
//! `switch_channel_event_set_data` (the same call every channel event
//! uses) and writes `switch_event_serialize_json`: one unformatted cJSON
//! object, no trailing newline, never fired (so no ESL subscriber sees it).
//!
//! So the body is the JSON of a channel event with `Event-Name:
//! CHANNEL_DATA`: the 13 headers every event starts with (`Event-Name`,
//! `Core-UUID`, `FreeSWITCH-Hostname`/`-Switchname`/`-IPv4`/`-IPv6`,
//! `Event-Date-Local`/`-GMT`/`-Timestamp`, `Event-Calling-File:
//! mod_commands.c`, `Event-Calling-Function: uuid_dump_function`,
//! `Event-Calling-Line-Number`, `Event-Sequence`), then the channel
//! (`Channel-State`, `Channel-Call-State`, `Channel-Name`, `Unique-ID`,
//! `Call-Direction`, `Channel-Presence-ID`, `Channel-Call-UUID`,
//! `Answer-State`, codecs, `Caller-*`, `Other-Type` + `Other-Leg-*` when
//! bridged or originated), then every `variable_*` (CHANNEL_DATA is on the
//! list that always carries variables). Array variables are JSON arrays,
//! empty values are never present, and unlike fired events there are no
//! duplicate keys (CHANNEL_DATA events replace a header on re-add). Errors
//! are `-ERR No such channel!` (see [`super::is_no_such_channel`]) and
//! `-USAGE: <uuid> [format]`.

use locus_esl::Event;

use super::{ListingError, check_api_error};

const WHAT: &str = "uuid_dump";

/// Parses a `uuid_dump <uuid> json` body into the `CHANNEL_DATA` event it
/// is, for the model to apply like any channel event.
pub fn parse_uuid_dump_json(body: &str) -> Result<Event, ListingError> {
    let body = check_api_error(body)?;
    let ev = Event::from_json(body.as_bytes())
        .map_err(|e| ListingError::malformed(WHAT, e.to_string()))?;
    // Checked so that a reply meant for another command can never be fed
    // to the model as a channel.
    if ev.name() != Some("CHANNEL_DATA") {
        return Err(ListingError::malformed(
            WHAT,
            format!("Event-Name {:?}", ev.name()),
        ));
    }
    if ev.unique_id().is_none() {
        return Err(ListingError::malformed(WHAT, "no Unique-ID"));
    }
    Ok(ev)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap (house rule)
mod tests {
    use super::*;
    use locus_esl::capture::{self, Direction};

    /// A real channel event body from a capture, as uuid_dump would shape
    /// it: same headers, `Event-Name: CHANNEL_DATA`.
    fn dump_like(event_name: &str) -> String {
        let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
        let records = capture::read(dir.join("02-register-and-basic-call.json.txt")).unwrap();
        let needle = format!("{{\"Event-Name\":\"{event_name}\",");
        let body = records
            .iter()
            .filter(|r| r.direction == Direction::ServerToClient)
            .map(|r| String::from_utf8_lossy(&r.data).into_owned())
            .find_map(|t| {
                let (_, body) = t.split_once("\n\n")?;
                body.starts_with(&needle).then(|| body.to_owned())
            })
            .unwrap();
        body.replacen(&needle, "{\"Event-Name\":\"CHANNEL_DATA\",", 1)
    }

    #[test]
    fn channel_event_shape_parses() {
        let body = dump_like("CHANNEL_ANSWER");
        let ev = parse_uuid_dump_json(&body).unwrap();
        assert_eq!(ev.name(), Some("CHANNEL_DATA"));
        assert_eq!(ev.get("Core-UUID").map(str::len), Some(36));
        let uuid = ev.unique_id().unwrap();
        assert_eq!(ev.get("Caller-Unique-ID"), Some(uuid));
        assert!(ev.var("direction").is_some());
        // The event starts with the 13 core headers, then the channel.
        let names: Vec<&str> = ev.headers().map(|(k, _)| k).collect();
        assert_eq!(names[12], "Event-Sequence");
        assert_eq!(names[13], "Channel-State");
    }

    #[test]
    fn errors() {
        let err = parse_uuid_dump_json("-ERR No such channel!\n").unwrap_err();
        assert!(super::super::is_no_such_channel(&err));
        assert!(matches!(
            parse_uuid_dump_json("-USAGE: <uuid> [format]\n"),
            Err(ListingError::Fs(_))
        ));
        let not_dump = dump_like("CHANNEL_ANSWER").replacen("CHANNEL_DATA", "CHANNEL_ANSWER", 1);
        for body in [
            "",
            "junk",
            "[]",
            "{\"Event-Name\":\"CHANNEL_DATA\"}",
            "{\"Event-Name\":\"CHANNEL_DATA\",\"Unique-ID\":\"\"}",
            not_dump.as_str(),
        ] {
            assert!(
                matches!(
                    parse_uuid_dump_json(body),
                    Err(ListingError::Malformed { .. })
                ),
                "{:?}",
                &body[..body.len().min(40)]
            );
        }
        let body = dump_like("CHANNEL_BRIDGE");
        for cut in (0..body.len()).step_by(11) {
            if let Some(prefix) = body.get(..cut) {
                assert!(parse_uuid_dump_json(prefix).is_err(), "cut at {cut}");
            }
        }
    }
}
