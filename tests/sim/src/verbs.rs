//! What a client's command line means, read with mod_event_socket's
//! matching rules on top of the shared [`Command::parse`]: verbs compare
//! ignoring case and, for the untyped ones, by prefix only (`strncasecmp`
//! over the verb's length), so `EXIT`, `exitnow`, `API status` and
//! `eventfoo json ALL` all work as on a real box.

use locus_esl::{Command, Request};

use crate::subscription::Subscription;

/// The command typed. Trailing blanks are ignored; the verb is lowered
/// first because the shared parser knows the lower-case spelling only.
pub fn parse(line: &str) -> Command {
    let line = line.trim_end();
    let canonical = match line.split_once(' ') {
        Some((verb, rest)) => format!("{} {rest}", verb.to_ascii_lowercase()),
        None => line.to_ascii_lowercase(),
    };
    Command::parse(&canonical)
}

/// The reply to an authenticated command with no typed form (a
/// [`Command::Raw`] line from [`parse`]): the subscription verbs matched by
/// prefix, `event` without a format word, and the session-only verbs an
/// inbound listener refuses.
pub fn other(sub: &mut Subscription, line: &str) -> String {
    if let Some(rest) = line.strip_prefix("filter ") {
        return sub.filter(rest);
    }
    if let Some(rest) = line.strip_prefix("nixevent") {
        return sub.nixevent(rest);
    }
    if line.starts_with("noevents") {
        return sub.noevents();
    }
    if line.starts_with("nolog") {
        // Sic: FreeSWITCH's spelling.
        return "-ERR not loging".into();
    }
    if line.starts_with("linger") || line.starts_with("nolinger") {
        return "-ERR not controlling a session".into();
    }
    if line.starts_with("event") {
        // mod_event_socket reads the words after the first space.
        let words = line.split_once(' ').map_or("", |(_, w)| w);
        return sub.event(words);
    }
    "-ERR command not found".into()
}

/// `Job-UUID` chosen by the client (a `bgapi` header), its name in any case
/// as `switch_event_get_header` compares.
pub fn job_uuid(req: &Request) -> Option<&str> {
    req.headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Job-UUID"))
        .map(|(_, v)| v.as_str())
}

/// `cmd arg...` -> (`cmd`, `arg...`), as mod_event_socket splits at the
/// first space.
pub fn split_cmd(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(' ') {
        Some((c, a)) => (c, Some(a)),
        None => (rest, None),
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use locus_esl::{EventFormat, ServerCodec};
    use tokio_util::codec::Decoder;

    use super::*;

    #[test]
    fn verbs_ignore_case_but_arguments_keep_it() {
        assert_eq!(parse("EXIT"), Command::Exit);
        assert_eq!(parse("exit  "), Command::Exit);
        assert_eq!(parse("API Status"), Command::Api("Status".into()));
        assert_eq!(parse("Auth ClueCon"), Command::Auth("ClueCon".into()));
        assert_eq!(
            parse("BGAPI originate user/1001 &park()"),
            Command::BgApi("originate user/1001 &park()".into())
        );
        assert_eq!(
            parse("event json CUSTOM sofia::register"),
            Command::Event(
                EventFormat::Json,
                vec!["CUSTOM".into(), "sofia::register".into()]
            )
        );
        // No typed form: left to the prefix rules, verb lowered.
        assert_eq!(parse("..."), Command::Raw("...".into()));
        assert_eq!(parse("NixEvent ALL"), Command::Raw("nixevent ALL".into()));
        assert_eq!(parse("api"), Command::Raw("api".into()));
    }

    #[test]
    fn prefix_verbs_reach_the_subscription() {
        let mut sub = Subscription::default();
        for (line, want) in [
            ("event CHANNEL_CREATE", "+OK event listener enabled plain"),
            ("nixevent CHANNEL_CREATE", "+OK events nixed"),
            ("filter Unique-ID x", "+OK filter added. [Unique-ID]=[x]"),
            ("nolinger", "-ERR not controlling a session"),
            ("nonsense", "-ERR command not found"),
        ] {
            assert_eq!(other(&mut sub, line), want, "{line}");
        }
    }

    #[test]
    fn job_uuid_header_matches_any_case() {
        let mut buf = BytesMut::from(&b"bgapi status\njob-uuid: j-1\n\n"[..]);
        let req = ServerCodec::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(job_uuid(&req), Some("j-1"));
        assert_eq!(split_cmd("status"), ("status", None));
        assert_eq!(split_cmd("a b c"), ("a", Some("b c")));
    }
}
