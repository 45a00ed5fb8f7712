//! [`SipMessage`]: the adapter between raw SIP bytes and the proxy. Every
//! other module reads and rewrites SIP through it (see `docs/decisions.md`,
//! "SIP parsing").
//!
//! Parsing (in `parse.rs`) never panics: any byte string gives a message
//! or a [`SipError`]. A message that is SIP but not by the book (RFC 3261
//! 8.2, 16.3, 18.3; RFC 4475's invalid messages) parses to a
//! [`StartLine::Faulty`] start line, so the core can answer a request with
//! 400, 416 or 505 and drop a response, counted.

use std::fmt::Write as _;

use bytes::{BufMut, Bytes, BytesMut};

use super::SipError;
use super::fields::{NameAddr, Replaces, Via};
use super::header::Headers;
use super::parse::{bad, content_length};
use super::uri::Uri;

/// Request line or status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// `METHOD uri SIP/2.0`
    Request {
        /// Method token as received (methods are case-sensitive, RFC 3261 7.1).
        method: String,
        /// Request-URI.
        uri: Uri,
    },
    /// `SIP/2.0 code reason`
    Response {
        /// Status code, 100-699.
        status: u16,
        /// Reason phrase.
        reason: String,
    },
    /// A request or response the proxy reads only far enough to refuse it:
    /// never forwarded, a request is answered with [`Fault::status`].
    Faulty(Fault),
}

/// Why a message is refused, and what a request gets for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    /// The start line as received.
    pub line: String,
    /// The method of a request (a token); `None` for a response.
    pub method: Option<String>,
    /// The answer to a request (RFC 3261 21): 400 (syntax, Content-Length),
    /// 416 (Request-URI scheme), 505 (SIP version), 513 (too large for a
    /// stream).
    pub status: u16,
    /// Its reason phrase, naming the fault (`Bad Content-Length`).
    pub reason: &'static str,
}

/// A SIP request or response: start line, ordered raw headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipMessage {
    /// Request or status line.
    pub start: StartLine,
    /// Headers in order, raw values.
    pub headers: Headers,
    /// Body (SDP, ...), shared with the receive buffer.
    pub body: Bytes,
}

impl SipMessage {
    /// Serialises the message. Content-Length is written as received;
    /// call [`SipMessage::set_body`] after changing the body.
    pub fn to_bytes(&self) -> Bytes {
        // Sized up front and written in place: this runs for every message
        // the proxy sends, so no intermediate String and no regrowth.
        let head: usize = self
            .headers
            .0
            .iter()
            .map(|h| h.name.len() + h.value.len() + 4)
            .sum();
        let mut out = BytesMut::with_capacity(head + 128 + self.body.len());
        match &self.start {
            StartLine::Request { method, uri } => {
                out.put_slice(method.as_bytes());
                out.put_u8(b' ');
                // Writing into a BytesMut cannot fail (it grows).
                let _ = write!(out, "{uri}");
                out.put_slice(b" SIP/2.0\r\n");
            }
            StartLine::Response { status, reason } => {
                let _ = write!(out, "SIP/2.0 {status} ");
                out.put_slice(reason.as_bytes());
                out.put_slice(b"\r\n");
            }
            StartLine::Faulty(f) => {
                out.put_slice(f.line.as_bytes());
                out.put_slice(b"\r\n");
            }
        }
        for h in &self.headers.0 {
            out.put_slice(h.name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(h.value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(&self.body);
        out.freeze()
    }

    /// Replaces the body and its Content-Length.
    pub fn set_body(&mut self, body: Bytes) {
        self.headers.set("Content-Length", &body.len().to_string());
        self.body = body;
    }

    /// Method of a request, faulty ones included; for a response, `None`
    /// (see [`SipMessage::cseq`]).
    pub fn method(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Faulty(f) => f.method.as_deref(),
            StartLine::Response { .. } => None,
        }
    }

    /// Request-URI of a request (`None` for a faulty one).
    pub fn request_uri(&self) -> Option<&Uri> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            _ => None,
        }
    }

    /// Status code of a response (`None` for a faulty one).
    pub fn status(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Whether this is a request, faulty or not.
    pub fn is_request(&self) -> bool {
        self.method().is_some()
    }

    /// Why the message is refused, when it is.
    pub fn fault(&self) -> Option<&Fault> {
        match &self.start {
            StartLine::Faulty(f) => Some(f),
            _ => None,
        }
    }

    /// The topmost Via value, parsed.
    pub fn top_via(&self) -> Result<Via, SipError> {
        let v = self.headers.first("Via").ok_or(SipError::Missing("Via"))?;
        Via::parse(v)
    }

    /// Every Via value, top first.
    pub fn vias(&self) -> Vec<&str> {
        self.headers.get_all("Via")
    }

    /// Adds a Via above all others (RFC 3261 16.6 step 8).
    pub fn push_via(&mut self, via: &Via) {
        self.headers.prepend("Via", &via.to_string());
    }

    /// Removes the topmost Via value (RFC 3261 16.7 step 3).
    pub fn pop_via(&mut self) -> Option<String> {
        self.headers.pop_first("Via")
    }

    /// Adds a Record-Route above all others (RFC 3261 16.6 step 4).
    pub fn prepend_record_route(&mut self, value: &str) {
        self.headers.prepend("Record-Route", value);
    }

    /// Removes and returns the first Route value (RFC 3261 16.4 / 16.12).
    pub fn pop_route(&mut self) -> Option<String> {
        self.headers.pop_first("Route")
    }

    /// Route values, in order.
    pub fn routes(&self) -> Result<Vec<NameAddr>, SipError> {
        self.headers
            .get_all("Route")
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    /// Record-Route values, in order.
    pub fn record_routes(&self) -> Result<Vec<NameAddr>, SipError> {
        self.headers
            .get_all("Record-Route")
            .into_iter()
            .map(NameAddr::parse)
            .collect()
    }

    /// Decrements Max-Forwards, adding 70 when absent (RFC 3261 16.6 step 3);
    /// [`SipError::TooManyHops`] when it is already 0 (answer 483).
    pub fn decrement_max_forwards(&mut self) -> Result<u32, SipError> {
        let now = match self.headers.get("Max-Forwards") {
            None => 70,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .map_err(|_| bad("Max-Forwards", v))?,
        };
        let next = now.checked_sub(1).ok_or(SipError::TooManyHops)?;
        self.headers.set("Max-Forwards", &next.to_string());
        Ok(next)
    }

    /// From header, parsed (`tel:` allowed, RFC 3966).
    pub fn from(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse_or_tel(self.headers.get("From").ok_or(SipError::Missing("From"))?)
    }

    /// To header, parsed (`tel:` allowed, RFC 3966).
    pub fn to(&self) -> Result<NameAddr, SipError> {
        NameAddr::parse_or_tel(self.headers.get("To").ok_or(SipError::Missing("To"))?)
    }

    /// Call-ID.
    pub fn call_id(&self) -> Result<&str, SipError> {
        self.headers
            .get("Call-ID")
            .filter(|v| !v.is_empty())
            .ok_or(SipError::Missing("Call-ID"))
    }

    /// CSeq number and method.
    pub fn cseq(&self) -> Result<(u32, &str), SipError> {
        let v = self.headers.get("CSeq").ok_or(SipError::Missing("CSeq"))?;
        let (n, m) = v
            .trim()
            .split_once(char::is_whitespace)
            .ok_or_else(|| bad("CSeq", v))?;
        let m = m.trim();
        if m.is_empty() {
            return Err(bad("CSeq", v));
        }
        Ok((n.parse().map_err(|_| bad("CSeq", v))?, m))
    }

    /// Contact URIs with their parameters; empty for `Contact: *` or none.
    pub fn contacts(&self) -> Result<Vec<NameAddr>, SipError> {
        let all = self.headers.get_all("Contact");
        all.into_iter()
            .filter(|v| *v != "*")
            .map(NameAddr::parse)
            .collect()
    }

    /// The Replaces header (RFC 3891), when present.
    pub fn replaces(&self) -> Result<Option<Replaces>, SipError> {
        self.headers
            .get("Replaces")
            .map(Replaces::parse)
            .transpose()
    }

    /// Content-Length, when present: every `Content-Length`/`l` line must
    /// carry the same decimal number (RFC 3261 20.14).
    pub fn content_length(&self) -> Result<Option<usize>, SipError> {
        content_length(&self.headers)
    }
}
