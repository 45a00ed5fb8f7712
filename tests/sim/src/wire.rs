//! Server-side ESL framing: decoding the commands a client sends and
//! encoding what FreeSWITCH sends back, byte for byte as in the captures.
//!
//! Kept in one module so it can later be swapped for the shared codec in
//! `locus-esl`. Facts it follows (mod_event_socket.c `read_packet`, the
//! captures): a command is a line plus optional `Name: value` lines ended by
//! a blank line; leading blank lines are ignored; CR is tolerated; a
//! `Content-Length` header announces a body. Replies use LF only.
//! `command/reply` has no body; `api/response` and
//! `text/disconnect-notice` put `Content-Type` first, events put
//! `Content-Length` first.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// Largest command header block accepted (FreeSWITCH caps at 10 MiB; a
/// simulator needs far less).
pub const MAX_COMMAND: usize = 64 * 1024;
/// Largest command body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// Event serialisation chosen with `event json|plain ...`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventFormat {
    /// `text/event-plain` (the default before any `event` command).
    Plain,
    /// `text/event-json`.
    Json,
}

impl EventFormat {
    /// `plain` / `json`, as in `+OK event listener enabled json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plain => "plain",
            Self::Json => "json",
        }
    }
}

/// One command from a client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    /// First line, without line end (e.g. `api status`).
    pub line: String,
    /// Further header lines (`sendmsg`-style commands, `Job-UUID`).
    pub headers: Vec<(String, String)>,
    /// Body announced by `Content-Length`.
    pub body: Option<String>,
}

impl Command {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why the command stream cannot go on.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The header block or body is larger than allowed.
    #[error("command too large ({0} bytes)")]
    TooLarge(usize),
    /// Socket error.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes client commands.
#[derive(Debug, Default)]
pub struct CommandDecoder {
    head: Option<(Command, usize)>,
}

impl Decoder for CommandDecoder {
    type Item = Command;
    type Error = WireError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Command>, WireError> {
        if self.head.is_none() {
            // Blank lines between commands are ignored, as FreeSWITCH does.
            let skip = src
                .iter()
                .take_while(|b| **b == b'\n' || **b == b'\r')
                .count();
            src.advance(skip);
            let Some(end) = block_end(src) else {
                if src.len() > MAX_COMMAND {
                    return Err(WireError::TooLarge(src.len()));
                }
                return Ok(None);
            };
            let block = src.split_to(end.1);
            let text = String::from_utf8_lossy(&block[..end.0]);
            let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
            let mut cmd = Command {
                line: lines.next().unwrap_or_default().to_owned(),
                ..Command::default()
            };
            for l in lines.filter(|l| !l.is_empty()) {
                if let Some((k, v)) = l.split_once(':') {
                    cmd.headers
                        .push((k.trim().to_owned(), v.trim_start().to_owned()));
                }
            }
            let len = cmd
                .header("Content-Length")
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if len > MAX_BODY {
                return Err(WireError::TooLarge(len));
            }
            if len == 0 {
                return Ok(Some(cmd));
            }
            self.head = Some((cmd, len));
        }
        let Some((_, len)) = &self.head else {
            return Ok(None);
        };
        if src.len() < *len {
            return Ok(None);
        }
        let body = src.split_to(*len);
        let Some((mut cmd, _)) = self.head.take() else {
            return Ok(None);
        };
        cmd.body = Some(String::from_utf8_lossy(&body).into_owned());
        Ok(Some(cmd))
    }
}

/// End of the header block: (content end, block end incl. blank line).
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            let rest = &buf[i + 1..];
            if rest.first() == Some(&b'\n') {
                return Some((i, i + 2));
            }
            if rest.starts_with(b"\r\n") {
                return Some((i, i + 3));
            }
        }
        i += 1;
    }
    None
}

/// `Content-Type: auth/request`, sent on connect.
pub fn auth_request() -> Bytes {
    Bytes::from_static(b"Content-Type: auth/request\n\n")
}

/// A `command/reply` with `Reply-Text` and optional extra headers.
pub fn command_reply(text: &str, extra: &[(&str, &str)]) -> Bytes {
    let mut s = format!("Content-Type: command/reply\nReply-Text: {text}\n");
    for (k, v) in extra {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s.push('\n');
    Bytes::from(s)
}

/// An `api/response` carrying `body` verbatim.
pub fn api_response(body: &str) -> Bytes {
    Bytes::from(format!(
        "Content-Type: api/response\nContent-Length: {}\n\n{body}",
        body.len()
    ))
}

/// An event frame with an already serialised body.
pub fn event(format: EventFormat, body: &str) -> Bytes {
    Bytes::from(format!(
        "Content-Length: {}\nContent-Type: text/event-{}\n\n{body}",
        body.len(),
        format.name()
    ))
}

/// A `text/disconnect-notice` carrying `body`.
pub fn disconnect_notice(body: &str) -> Bytes {
    Bytes::from(format!(
        "Content-Type: text/disconnect-notice\nContent-Length: {}\n\n{body}",
        body.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(input: &[u8]) -> Vec<Command> {
        let mut d = CommandDecoder::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        // Byte by byte: framing must not depend on read boundaries.
        for b in input {
            buf.extend_from_slice(&[*b]);
            while let Some(c) = d.decode(&mut buf).unwrap() {
                out.push(c);
            }
        }
        out
    }

    #[test]
    fn commands_with_headers_and_bodies() {
        let cmds = decode_all(
            b"\n\nauth ClueCon\n\nbgapi status\nJob-UUID: abc\n\r\nsendevent CUSTOM\nContent-Length: 3\n\nxyzapi hostname\r\n\r\n",
        );
        assert_eq!(cmds.len(), 4);
        assert_eq!(cmds[0].line, "auth ClueCon");
        assert_eq!(cmds[1].header("job-uuid"), Some("abc"));
        assert_eq!(cmds[2].body.as_deref(), Some("xyz"));
        assert_eq!(cmds[3].line, "api hostname");
    }

    #[test]
    fn oversized_command_is_an_error() {
        let mut d = CommandDecoder::default();
        let mut buf = BytesMut::from(&vec![b'a'; MAX_COMMAND + 1][..]);
        assert!(d.decode(&mut buf).is_err());
        let mut buf = BytesMut::from(&b"x\nContent-Length: 99999999\n\n"[..]);
        assert!(CommandDecoder::default().decode(&mut buf).is_err());
    }

    #[test]
    fn frames_match_capture_bytes() {
        assert_eq!(
            &command_reply("+OK accepted", &[])[..],
            b"Content-Type: command/reply\nReply-Text: +OK accepted\n\n"
        );
        assert_eq!(
            &api_response("vm")[..],
            b"Content-Type: api/response\nContent-Length: 2\n\nvm"
        );
        assert_eq!(
            &event(EventFormat::Json, "{}")[..],
            b"Content-Length: 2\nContent-Type: text/event-json\n\n{}"
        );
    }
}
