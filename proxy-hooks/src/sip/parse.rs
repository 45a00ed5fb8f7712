//! Parsing SIP bytes into a [`SipMessage`] (RFC 3261 7, 18.3, 25), and UDP
//! datagrams into a message or a keep-alive. Never panics: every input
//! gives a message or a [`SipError`].
//!
//! What is SIP but not by the book gives a message with a
//! [`StartLine::Faulty`] start line rather than an error, so the core can
//! answer it (RFC 4475's invalid messages): an unsupported version (505),
//! a Request-URI with an unknown scheme (416) or broken syntax (400), a
//! header line without a name, and a Content-Length that is not one
//! decimal number or promises more than the datagram holds (400, RFC 3261
//! 18.3). An error is left for bytes that are not a SIP message at all.

use bytes::Bytes;

use super::SipError;
use super::header::{Header, Headers, same_name};
use super::message::{Fault, SipMessage, StartLine};
use super::uri::{SchemeOf, Uri, scheme_of};

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

/// The first empty line (CRLF CRLF, or bare LF LF) that ends at or after
/// `from`: (where it starts, where the body starts). Looks at each byte
/// from `from` on once (plus three behind it), so a stream reader that
/// resumes where it stopped scans every byte once.
pub(crate) fn blank_line(data: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(at) = data.get(i..)?.iter().position(|b| *b == b'\n') {
        let lf = i + at;
        if lf >= 1 && data[lf - 1] == b'\n' {
            return Some((lf - 1, lf + 1));
        }
        if lf >= 3 && &data[lf - 3..lf] == b"\r\n\r" {
            return Some((lf - 3, lf + 1));
        }
        i = lf + 1;
    }
    None
}

/// A message head: the start line (faulty or not) and the headers.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) start: StartLine,
    pub(crate) headers: Headers,
}

impl Head {
    /// Reads a start line and header lines (no blank line at the end).
    pub(crate) fn read(bytes: &[u8]) -> Result<Head, SipError> {
        let text = std::str::from_utf8(bytes).map_err(|_| SipError::NotUtf8)?;
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        let mut head = Head {
            start: read_start(lines.next().unwrap_or_default())?,
            headers: Headers::default(),
        };
        let mut bad_line = false;
        for line in lines {
            if line.starts_with([' ', '\t']) {
                // Folded continuation line (RFC 3261 7.3.1): joins the previous header.
                match head.headers.0.last_mut() {
                    Some(prev) => {
                        if !prev.value.is_empty() {
                            prev.value.push(' ');
                        }
                        prev.value.push_str(line.trim());
                    }
                    None => bad_line = true,
                }
                continue;
            }
            let Some((name, value)) = line.split_once(':') else {
                bad_line = true;
                continue;
            };
            let name = name.trim();
            if name.is_empty() || !name.bytes().all(is_token) {
                bad_line = true;
                continue;
            }
            head.headers.0.push(Header {
                name: name.to_string(),
                value: value.trim().to_string(),
            });
        }
        if bad_line {
            head.refuse(400, "Bad Header");
        }
        Ok(head)
    }

    /// Marks the message refused with `status` (for a request) unless it
    /// already is: the first fault found is the one answered.
    pub(crate) fn refuse(&mut self, status: u16, reason: &'static str) {
        let (line, method) = match &self.start {
            StartLine::Faulty(_) => return,
            StartLine::Request { method, uri } => {
                (format!("{method} {uri} SIP/2.0"), Some(method.clone()))
            }
            StartLine::Response { status, reason } => (format!("SIP/2.0 {status} {reason}"), None),
        };
        self.start = StartLine::Faulty(Fault {
            line,
            method,
            status,
            reason,
        });
    }

    pub(crate) fn into_message(self, body: Bytes) -> SipMessage {
        SipMessage {
            start: self.start,
            headers: self.headers,
            body,
        }
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
        let (end, body_at) = blank_line(&data, skip).ok_or(SipError::Incomplete)?;
        let mut head = Head::read(&data[skip..end])?;
        let rest = data.slice(body_at..);
        let body = match content_length(&head.headers) {
            Ok(Some(want)) if want <= rest.len() => rest.slice(..want),
            Ok(None) => rest,
            // RFC 3261 18.3: a datagram shorter than its Content-Length is
            // an error (400 for a request, a response is discarded).
            _ => {
                head.refuse(400, "Bad Content-Length");
                rest
            }
        };
        Ok(head.into_message(body))
    }
}

/// Content-Length (RFC 3261 20.14, `1*DIGIT`) over every `Content-Length`
/// and `l` line: `None` when absent; an error for a sign, a non-digit, a
/// value beyond `usize`, or two different values (RFC 4475 3.1.2.3,
/// 3.1.2.4, 3.3.9). Repeating the same value is tolerated.
pub(crate) fn content_length(h: &Headers) -> Result<Option<usize>, SipError> {
    let values = h.0.iter().filter(|x| same_name(&x.name, "Content-Length"));
    length_of(values.map(|x| x.value.as_str()))
}

/// [`content_length`] over raw values.
pub(crate) fn length_of<'a>(
    values: impl IntoIterator<Item = &'a str>,
) -> Result<Option<usize>, SipError> {
    let mut found = None;
    for v in values {
        let v = v.trim();
        let n = Some(v)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| found.is_none_or(|f| f == *n))
            .ok_or_else(|| bad("Content-Length", v))?;
        found = Some(n);
    }
    Ok(found)
}

/// `SIP/major.minor` (RFC 3261 7.1, "SIP" case-insensitive): `Some(true)`
/// for 2.0, `Some(false)` for another version, `None` when not a version.
fn sip_version(v: &str) -> Option<bool> {
    let (name, num) = v.split_once('/')?;
    let (major, minor) = num.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (name.eq_ignore_ascii_case("SIP") && digits(major) && digits(minor)).then_some(num == "2.0")
}

fn read_start(line: &str) -> Result<StartLine, SipError> {
    if line
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        return Ok(status_line(line));
    }
    let err = || SipError::StartLine(clip(line));
    let (method, rest) = line.split_once(' ').ok_or_else(err)?;
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(err());
    }
    // Trailing or doubled SP (RFC 4475 3.1.2.9, 3.1.2.10) and LWS inside
    // the URI (3.1.2.8) make the target unreadable: 400, not a guess.
    let trimmed = rest.trim_end_matches([' ', '\t']);
    let (target, version) = trimmed.rsplit_once(' ').ok_or_else(err)?;
    let fault = |status, reason| {
        Ok(StartLine::Faulty(Fault {
            line: line.to_string(),
            method: Some(method.to_string()),
            status,
            reason,
        }))
    };
    match sip_version(version) {
        None => return Err(err()),
        Some(false) => return fault(505, "Version Not Supported"),
        Some(true) => {}
    }
    if trimmed.len() != rest.len() || target.is_empty() || target != target.trim() {
        return fault(400, "Bad Request-Line");
    }
    match scheme_of(target) {
        SchemeOf::Invalid => fault(400, "Bad Request-URI"),
        // RFC 3261 8.2.2.1, 16.3 step 2.
        SchemeOf::Unknown => fault(416, "Unsupported URI Scheme"),
        SchemeOf::Known => match Uri::parse_or_tel(target) {
            // RFC 3261 19.1.1: no `?headers` in a Request-URI (RFC 4475 3.1.2.11).
            Ok(uri) if uri.headers.is_none() => Ok(StartLine::Request {
                method: method.to_string(),
                uri,
            }),
            _ => fault(400, "Bad Request-URI"),
        },
    }
}

/// A status line; faulty when the version is not 2.0 or the code is not
/// three digits from 100 to 699 (RFC 4475 3.1.2.19): such a response is
/// dropped.
fn status_line(line: &str) -> StartLine {
    let (version, rest) = line.split_once(' ').unwrap_or((line, ""));
    // An empty reason phrase is legal and some UAs drop the space before it.
    let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
    let fault = |status, reason| {
        StartLine::Faulty(Fault {
            line: line.to_string(),
            method: None,
            status,
            reason,
        })
    };
    match sip_version(version) {
        None => return fault(400, "Bad Status-Line"),
        Some(false) => return fault(505, "Version Not Supported"),
        Some(true) => {}
    }
    match code.parse::<u16>() {
        Ok(status) if code.len() == 3 && (100..=699).contains(&status) => StartLine::Response {
            status,
            reason: reason.to_string(),
        },
        _ => fault(400, "Bad Status-Code"),
    }
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
