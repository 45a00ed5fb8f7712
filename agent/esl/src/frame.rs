//! One ESL message as it crosses the wire ([`Frame`]: outer headers in wire
//! order plus an optional body) and its typed reading ([`Message`]).
//!
//! Outer header values are kept raw: mod_event_socket does not
//! percent-encode them (`Reply-Text: +OK Job-UUID: ...` arrives verbatim in
//! the captures); only the *body* of a `text/event-plain` event is encoded.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::EslError;
use crate::event::Event;

/// `Content-Type` values FreeSWITCH sends (checked against the captures).
pub mod content_type {
    /// First frame of every connection.
    pub const AUTH_REQUEST: &str = "auth/request";
    /// Reply to every non-`api` command (`Reply-Text: +OK ...` / `-ERR ...`).
    pub const COMMAND_REPLY: &str = "command/reply";
    /// Reply to `api`, the output in the body.
    pub const API_RESPONSE: &str = "api/response";
    /// An event whose body is one JSON object.
    pub const EVENT_JSON: &str = "text/event-json";
    /// An event whose body is percent-encoded `Name: value` lines.
    pub const EVENT_PLAIN: &str = "text/event-plain";
    /// Sent right before FreeSWITCH closes the connection.
    pub const DISCONNECT_NOTICE: &str = "text/disconnect-notice";
}

/// One ESL message: outer headers in wire order (values raw) and the body
/// announced by `Content-Length`, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frame {
    /// Outer headers in wire order.
    pub headers: Vec<(String, String)>,
    /// The `Content-Length` bytes after the blank line.
    pub body: Option<Bytes>,
}

impl Frame {
    /// First value of an outer header; names compare ASCII
    /// case-insensitively, as libesl does.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Type`, or `""` when absent.
    pub fn content_type(&self) -> &str {
        self.header("Content-Type").unwrap_or("")
    }

    /// `Reply-Text` of a `command/reply`.
    pub fn reply_text(&self) -> Option<&str> {
        self.header("Reply-Text")
    }

    /// `Job-UUID` of a `bgapi` reply.
    pub fn job_uuid(&self) -> Option<&str> {
        self.header("Job-UUID")
    }

    /// The body as text (lossy: api output is not guaranteed UTF-8).
    pub fn body_text(&self) -> String {
        self.body
            .as_ref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    /// A frame from headers and a body; adds no header by itself.
    pub fn new(headers: Vec<(String, String)>, body: Option<Bytes>) -> Self {
        Self { headers, body }
    }

    /// Writes the frame in wire form. Fails, writing nothing, when a header
    /// holds a line break (it would forge frames) or when `Content-Length`
    /// disagrees with the body.
    pub fn write_to(&self, dst: &mut BytesMut) -> Result<(), EslError> {
        for (k, v) in &self.headers {
            if has_line_break(k) || has_line_break(v) || k.is_empty() {
                return Err(EslError::LineBreak(format!("{k}: {v}")));
            }
        }
        let announced = self.header("Content-Length");
        let actual = self.body.as_ref().map(|b| b.len().to_string());
        if announced != actual.as_deref() {
            return Err(EslError::LengthMismatch);
        }
        let head: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.len() + v.len() + 3)
            .sum();
        let size = head + 1 + self.body.as_ref().map_or(0, |b| b.len());
        dst.reserve(size);
        for (k, v) in &self.headers {
            dst.put_slice(k.as_bytes());
            dst.put_slice(b": ");
            dst.put_slice(v.as_bytes());
            dst.put_u8(b'\n');
        }
        dst.put_u8(b'\n');
        if let Some(body) = &self.body {
            dst.put_slice(body);
        }
        Ok(())
    }

    /// The frame in wire form (see [`Frame::write_to`]).
    pub fn to_bytes(&self) -> Result<Bytes, EslError> {
        let mut out = BytesMut::new();
        self.write_to(&mut out)?;
        Ok(out.freeze())
    }
}

pub(crate) fn has_line_break(s: &str) -> bool {
    s.bytes().any(|b| b == b'\n' || b == b'\r')
}

/// A frame read for what it means to a client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `auth/request`: the server wants the password.
    AuthRequest,
    /// `command/reply`.
    CommandReply {
        /// `Reply-Text` (`+OK accepted`, `-ERR invalid`, ...).
        text: String,
        /// `Job-UUID` when answering `bgapi`.
        job_uuid: Option<String>,
    },
    /// `api/response`: the body verbatim (may be `-ERR ...`).
    ApiResponse(String),
    /// `text/event-json` or `text/event-plain`, parsed.
    Event(Event),
    /// `text/disconnect-notice`: the body; the server closes next.
    DisconnectNotice(String),
    /// Any other content type (e.g. `log/data`), untouched.
    Other(Frame),
}

impl TryFrom<Frame> for Message {
    type Error = EslError;

    /// Classifies a frame. Only an unparsable event body fails; the framing
    /// is intact then, so the connection may go on.
    fn try_from(frame: Frame) -> Result<Self, EslError> {
        let body = frame.body.as_deref().unwrap_or_default();
        Ok(match frame.content_type() {
            content_type::AUTH_REQUEST => Message::AuthRequest,
            content_type::COMMAND_REPLY => Message::CommandReply {
                text: frame.reply_text().unwrap_or_default().to_owned(),
                job_uuid: frame.job_uuid().map(str::to_owned),
            },
            content_type::API_RESPONSE => Message::ApiResponse(frame.body_text()),
            content_type::EVENT_JSON => Message::Event(Event::from_json(body)?),
            content_type::EVENT_PLAIN => Message::Event(Event::from_plain(body)?),
            content_type::DISCONNECT_NOTICE => Message::DisconnectNotice(frame.body_text()),
            _ => Message::Other(frame),
        })
    }
}
