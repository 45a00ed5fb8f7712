//! The server side of the wire, shared with the simulator: builders for
//! every frame FreeSWITCH sends, byte for byte as in the captures, and a
//! [`ServerCodec`] that reads client commands.
//!
//! Header order matters for fidelity: `api/response` and
//! `text/disconnect-notice` put `Content-Type` first, events put
//! `Content-Length` first (as mod_event_socket writes them).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::codec::{BlockDecoder, Limits};
use crate::command::Command;
use crate::error::EslError;
use crate::event::Event;
use crate::frame::{Frame, content_type as ct};

/// Disconnect notice body after `exit` (and after a rejected password).
pub const BYE_NOTICE: &str =
    "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
/// Disconnect notice body when FreeSWITCH shuts down.
pub const SHUTDOWN_NOTICE: &str = "The system is being shut down.\n";

fn h(k: &str, v: impl Into<String>) -> (String, String) {
    (k.to_owned(), v.into())
}

impl Frame {
    /// `Content-Type: auth/request`, the first frame of every connection.
    pub fn auth_request() -> Frame {
        Frame::new(vec![h("Content-Type", ct::AUTH_REQUEST)], None)
    }

    /// `command/reply` with `Reply-Text`, plus `Job-UUID` for `bgapi`
    /// (whose `Reply-Text` is `+OK Job-UUID: <uuid>`).
    pub fn command_reply(text: &str, job_uuid: Option<&str>) -> Frame {
        let mut headers = vec![h("Content-Type", ct::COMMAND_REPLY), h("Reply-Text", text)];
        if let Some(job) = job_uuid {
            headers.push(h("Job-UUID", job));
        }
        Frame::new(headers, None)
    }

    /// The `bgapi` acknowledgement for `job_uuid`.
    pub fn bgapi_reply(job_uuid: &str) -> Frame {
        Frame::command_reply(&format!("+OK Job-UUID: {job_uuid}"), Some(job_uuid))
    }

    /// `api/response` carrying `body` verbatim.
    pub fn api_response(body: impl Into<Bytes>) -> Frame {
        Self::with_body_after_type(ct::API_RESPONSE, body.into())
    }

    /// `text/disconnect-notice` carrying `body` (see [`BYE_NOTICE`],
    /// [`SHUTDOWN_NOTICE`]).
    pub fn disconnect_notice(body: &str) -> Frame {
        Self::with_body_after_type(
            ct::DISCONNECT_NOTICE,
            Bytes::copy_from_slice(body.as_bytes()),
        )
    }

    /// A `text/event-json` frame for `ev` (body from [`Event::to_json`]).
    pub fn event_json(ev: &Event) -> Frame {
        Self::event(ct::EVENT_JSON, ev.to_json())
    }

    /// A `text/event-plain` frame for `ev` (body from [`Event::to_plain`]).
    pub fn event_plain(ev: &Event) -> Frame {
        Self::event(ct::EVENT_PLAIN, ev.to_plain())
    }

    fn with_body_after_type(content_type: &str, body: Bytes) -> Frame {
        let headers = vec![
            h("Content-Type", content_type),
            h("Content-Length", body.len().to_string()),
        ];
        Frame::new(headers, Some(body))
    }

    fn event(content_type: &str, body: String) -> Frame {
        let headers = vec![
            h("Content-Length", body.len().to_string()),
            h("Content-Type", content_type),
        ];
        Frame::new(headers, Some(Bytes::from(body)))
    }
}

/// One command as a server reads it: the command line, then any
/// `Name: value` headers (as `sendmsg` carries) and a body.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The first line, e.g. `api status`.
    pub line: String,
    /// Headers after the command line, in order.
    pub headers: Vec<(String, String)>,
    /// Body announced by a `Content-Length` header.
    pub body: Option<Bytes>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `auth <password>` must not reach a log through `{:?}`.
        let line = if self.line.starts_with("auth ") {
            "auth <redacted>"
        } else {
            &self.line
        };
        f.debug_struct("Request")
            .field("line", &line)
            .field("headers", &self.headers)
            .field("body", &self.body.as_ref().map(|b| b.len()))
            .finish()
    }
}

impl Request {
    /// The command line, typed.
    pub fn command(&self) -> Command {
        Command::parse(&self.line)
    }
}

/// Server-side codec (for the simulator and test servers): decodes client
/// commands into [`Request`]s and encodes [`Frame`]s. Same caps and the same
/// state machine as [`crate::EslCodec`].
#[derive(Debug)]
pub struct ServerCodec {
    inner: BlockDecoder,
}

impl ServerCodec {
    /// A codec with the given size caps.
    pub fn new(limits: Limits) -> Self {
        Self {
            inner: BlockDecoder::new(limits, true),
        }
    }
}

impl Default for ServerCodec {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder for ServerCodec {
    type Item = Request;
    type Error = EslError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Request>, EslError> {
        Ok(self.inner.decode(src)?.map(|b| Request {
            line: b.line.unwrap_or_default(),
            headers: b.headers,
            body: b.body,
        }))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Request>, EslError> {
        match self.decode(src)? {
            Some(req) => Ok(Some(req)),
            None if self.inner.is_idle(src) => Ok(None),
            None => Err(EslError::Truncated { pending: src.len() }),
        }
    }
}

impl Encoder<&Frame> for ServerCodec {
    type Error = EslError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EslError> {
        frame.write_to(dst)
    }
}

impl Encoder<Frame> for ServerCodec {
    type Error = EslError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), EslError> {
        frame.write_to(dst)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn request_debug_hides_the_password() {
        let mut buf = BytesMut::from(&b"auth s3cret\n\n"[..]);
        let req = ServerCodec::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(req.command(), Command::Auth("s3cret".into()));
        assert!(!format!("{req:?}").contains("s3cret"));
    }

    #[test]
    fn builders_match_the_captured_shapes() {
        let bytes = |f: Frame| f.to_bytes().unwrap();
        assert_eq!(
            bytes(Frame::auth_request()),
            &b"Content-Type: auth/request\n\n"[..]
        );
        assert_eq!(
            bytes(Frame::api_response("vm")),
            &b"Content-Type: api/response\nContent-Length: 2\n\nvm"[..]
        );
        assert_eq!(
            bytes(Frame::bgapi_reply("j1")),
            &b"Content-Type: command/reply\nReply-Text: +OK Job-UUID: j1\nJob-UUID: j1\n\n"[..]
        );
    }
}
