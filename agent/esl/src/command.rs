//! Commands a client sends to mod_event_socket, as types.
//!
//! Each command is one line ended by a blank line (`api status\n\n`). A line
//! break inside an argument would end the command early and let the rest
//! be read as a second command (`api status\n\nexit`), so every argument is
//! checked and such a command is refused with [`EslError::LineBreak`].

use std::fmt;

use bytes::{BufMut, BytesMut};

use crate::error::EslError;
use crate::frame::has_line_break;

/// Event body format requested by `event <format> ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFormat {
    /// `text/event-json`.
    Json,
    /// `text/event-plain`.
    Plain,
}

impl EventFormat {
    /// `json` / `plain`, as written in `event json ...` and in the
    /// `+OK event listener enabled json` reply.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Plain => "plain",
        }
    }
}

/// A client command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    /// `auth <password>`: the answer to `auth/request`.
    Auth(String),
    /// `api <cmd>`: run and answer in one `api/response`.
    Api(String),
    /// `bgapi <cmd>`: answer `+OK Job-UUID: ...` now, a `BACKGROUND_JOB` later.
    BgApi(String),
    /// `event <format> <names...>`: subscribe (`ALL`, `CUSTOM sub::class`, ...).
    Event(EventFormat, Vec<String>),
    /// `exit`: FreeSWITCH answers `+OK bye`, a disconnect notice, then closes.
    Exit,
    /// Any other single-line command, sent verbatim.
    Raw(String),
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Auth(_) => f.write_str("Auth(<redacted>)"),
            Self::Api(c) => f.debug_tuple("Api").field(c).finish(),
            Self::BgApi(c) => f.debug_tuple("BgApi").field(c).finish(),
            Self::Event(fmt, names) => f.debug_tuple("Event").field(fmt).field(names).finish(),
            Self::Exit => f.write_str("Exit"),
            Self::Raw(c) => f.debug_tuple("Raw").field(c).finish(),
        }
    }
}

impl Command {
    /// `event json <names...>`.
    pub fn event_json<S: AsRef<str>>(names: &[S]) -> Self {
        Self::Event(
            EventFormat::Json,
            names.iter().map(|s| s.as_ref().to_owned()).collect(),
        )
    }

    /// Reads a command line back (the simulator's side). Unknown lines, and
    /// known verbs without an argument (a bare `api`), become [`Command::Raw`]
    /// so that encoding gives back the same line.
    pub fn parse(line: &str) -> Self {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        match (verb, arg) {
            ("exit", "") => Self::Exit,
            (_, "") => Self::Raw(line.to_owned()),
            ("auth", p) => Self::Auth(p.to_owned()),
            ("api", c) => Self::Api(c.to_owned()),
            ("bgapi", c) => Self::BgApi(c.to_owned()),
            ("event", rest) => {
                let mut words = rest.split(' ');
                let format = match words.next() {
                    Some("json") => EventFormat::Json,
                    Some("plain") => EventFormat::Plain,
                    _ => return Self::Raw(line.to_owned()),
                };
                let names: Vec<String> = words.map(str::to_owned).collect();
                if names.iter().any(String::is_empty) {
                    return Self::Raw(line.to_owned());
                }
                Self::Event(format, names)
            }
            _ => Self::Raw(line.to_owned()),
        }
    }

    /// The command line without its terminating blank line.
    pub fn line(&self) -> Result<String, EslError> {
        let line = match self {
            Self::Auth(p) => format!("auth {p}"),
            Self::Api(c) => format!("api {c}"),
            Self::BgApi(c) => format!("bgapi {c}"),
            Self::Event(fmt, names) => {
                let mut l = format!("event {}", fmt.as_str());
                for n in names {
                    l.push(' ');
                    l.push_str(n);
                }
                l
            }
            Self::Exit => "exit".to_owned(),
            Self::Raw(c) => c.clone(),
        };
        if has_line_break(&line) {
            // Never echo a password into an error or a log.
            let shown = match self {
                Self::Auth(_) => "auth <redacted>".to_owned(),
                _ => line.chars().take(80).collect(),
            };
            return Err(EslError::LineBreak(shown));
        }
        Ok(line)
    }

    /// Writes `line\n\n`, or nothing on error.
    pub fn write_to(&self, dst: &mut BytesMut) -> Result<(), EslError> {
        let line = self.line()?;
        dst.reserve(line.len() + 2);
        dst.put_slice(line.as_bytes());
        dst.put_slice(b"\n\n");
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_write_round_trip() {
        for line in [
            "auth ClueCon",
            "api status",
            "api",
            "bgapi originate {a=b}user/1001 &park()",
            "event json CHANNEL_CREATE CUSTOM sofia::register",
            "event plain ALL",
            "exit",
            "nonsense_top_level_command",
        ] {
            let mut out = BytesMut::new();
            Command::parse(line).write_to(&mut out).unwrap();
            assert_eq!(out, format!("{line}\n\n").as_bytes(), "{line}");
        }
        assert_eq!(Command::parse("api status"), Command::Api("status".into()));
        assert_eq!(Command::parse("exit"), Command::Exit);
    }

    #[test]
    fn line_breaks_are_refused_and_nothing_written() {
        let mut out = BytesMut::new();
        for cmd in [
            Command::Api("status\n\nexit".into()),
            Command::BgApi("x\ry".into()),
            Command::event_json(&["A\nB"]),
            Command::Raw("exit\n".into()),
        ] {
            assert!(matches!(
                cmd.write_to(&mut out),
                Err(EslError::LineBreak(_))
            ));
        }
        assert!(out.is_empty());
    }

    #[test]
    fn password_never_shown() {
        let cmd = Command::Auth("s3cret\n".into());
        assert!(!format!("{cmd:?}").contains("s3cret"));
        let err = cmd.line().unwrap_err().to_string();
        assert!(!err.contains("s3cret"), "{err}");
    }
}
