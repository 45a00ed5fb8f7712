//! Parsing SIP bytes into a [`SipMessage`] (RFC 3261 7 and 18.3), and UDP
//! datagrams into a message or a keep-alive. Never panics: every input
//! gives a message or a [`SipError`].

use bytes::Bytes;

use super::SipError;
use super::header::{Header, Headers};
use super::message::{SipMessage, StartLine};
use super::uri::Uri;

/// What one UDP datagram carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// A SIP message.
    Message(SipMessage),
    /// A CRLF keep-alive (RFC 5626 4.4.1 pings on UDP are STUN; phones still send CRLFs).
    KeepAlive,
}

/// Parses one UDP datagram (RFC 3261 18.3: one datagram, one message).
pub fn parse_datagram(data: &[u8]) -> Result<Datagram, SipError> {
    if !data.is_empty()
        && data
            .iter()
            .all(|b| matches!(b, b'\r' | b'\n' | b' ' | b'\t'))
    {
        return Ok(Datagram::KeepAlive);
    }
    SipMessage::parse(data).map(Datagram::Message)
}

/// Offset of the body: after the first empty line (CRLF CRLF, or bare LF LF).
pub(crate) fn head_end(data: &[u8]) -> Option<(usize, usize)> {
    let crlf = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, i + 4));
    let lf = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

impl SipMessage {
    /// Parses one whole message. The body is Content-Length bytes when the
    /// header is present (extra bytes ignored, RFC 3261 18.3), else the rest.
    pub fn parse(data: &[u8]) -> Result<SipMessage, SipError> {
        Self::parse_bytes(Bytes::copy_from_slice(data))
    }

    /// As [`SipMessage::parse`], without copying the body.
    pub fn parse_bytes(data: Bytes) -> Result<SipMessage, SipError> {
        // Leading CRLFs before a message are allowed on streams (RFC 3261 7.5).
        let skip = data
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        let (end, body_at) = head_end(&data[skip..]).ok_or(SipError::Incomplete)?;
        let head = std::str::from_utf8(&data[skip..skip + end]).map_err(|_| SipError::NotUtf8)?;
        let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let start = parse_start(lines.next().unwrap_or_default())?;
        let mut headers: Vec<Header> = Vec::new();
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation line (RFC 3261 7.3.1): joins the previous header.
                let prev = headers
                    .last_mut()
                    .ok_or_else(|| SipError::HeaderLine(clip(line)))?;
                prev.value.push(' ');
                prev.value.push_str(line.trim());
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| SipError::HeaderLine(clip(line)))?;
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token) {
                return Err(SipError::HeaderLine(clip(line)));
            }
            headers.push(Header {
                name: name.to_string(),
                value: value.trim().to_string(),
            });
        }
        let headers = Headers(headers);
        let rest = data.slice(skip + body_at..);
        let body = match content_length(&headers)? {
            Some(want) if want > rest.len() => {
                return Err(SipError::Truncated {
                    have: rest.len(),
                    want,
                });
            }
            Some(want) => rest.slice(..want),
            None => rest,
        };
        Ok(SipMessage {
            start,
            headers,
            body,
        })
    }
}

pub(super) fn content_length(h: &Headers) -> Result<Option<usize>, SipError> {
    h.get("Content-Length")
        .map(|v| {
            v.trim()
                .parse::<usize>()
                .map_err(|_| bad("Content-Length", v))
        })
        .transpose()
}

fn parse_start(line: &str) -> Result<StartLine, SipError> {
    let err = || SipError::StartLine(clip(line));
    let mut parts = line.splitn(3, ' ');
    let a = parts.next().unwrap_or_default();
    let b = parts.next().ok_or_else(err)?;
    // An empty reason phrase is legal and some UAs drop the space before it.
    let c = parts.next().unwrap_or_default();
    if a == "SIP/2.0" {
        let status: u16 = b.parse().map_err(|_| err())?;
        if !(100..=699).contains(&status) {
            return Err(err());
        }
        return Ok(StartLine::Response {
            status,
            reason: c.to_string(),
        });
    }
    if c != "SIP/2.0" || a.is_empty() || !a.bytes().all(is_token) {
        return Err(err());
    }
    Ok(StartLine::Request {
        method: a.to_string(),
        uri: Uri::parse(b)?,
    })
}

fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

pub(super) fn bad(header: &'static str, v: &str) -> SipError {
    SipError::HeaderValue {
        header,
        value: clip(v),
    }
}

fn clip(s: &str) -> String {
    s.chars().take(200).collect()
}
