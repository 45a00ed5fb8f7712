//! [`SipCodec`]: SIP over a byte stream (TCP), RFC 3261 18.3: messages are
//! framed by Content-Length, which is therefore required; CRLF keep-alives
//! (RFC 5626 3.5.1) between messages are items of their own. No I/O, no
//! policy: the transport decides what to answer and when to close.
//!
//! Framing is incremental: the search for the end of a head resumes where
//! the last read stopped and the head is read once, so a peer trickling a
//! message byte by byte costs work linear in its size
//! ([`SipCodec::examined`] counts it).
//!
//! When framing fails the stream is never guessed back into step:
//! * a well-formed Content-Length too large to buffer (past the 64 KiB cap)
//!   gives the request a `513 Message Too Large` (RFC 3261 21.5.9) and its
//!   body is skipped, so the next message on the connection is read (up to
//!   a bounded skip; beyond it, as below);
//! * a missing, negative, non-numeric, overflowing or conflicting
//!   Content-Length, or a head past the cap, leaves no known boundary:
//!   [`SipError::Unframed`], carrying the 400 (or 513) to write before the
//!   connection closes when a request head was readable.

use std::hash::BuildHasher;

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::SipError;
use super::message::SipMessage;
use super::parse::{Head, blank_line, content_length, length_of};

/// Largest message accepted on a stream (head + body).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Largest body skipped after refusing a message as too large; past it the
/// connection closes instead (discarding more is a dead connection).
const MAX_SKIP: usize = 16 * MAX_MESSAGE;

/// RFC 5626 keep-alive kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepAlive {
    /// CRLFCRLF: the peer asks for a pong.
    Ping,
    /// A lone CRLF: a pong (or a stray line end).
    Pong,
}

/// One item read from a stream.
#[derive(Debug)]
pub enum SipFrame {
    /// A whole message; a faulty one ([`super::StartLine::Faulty`]) is
    /// answered by the core (505, 416, 400, 513) and the stream goes on.
    Message(SipMessage),
    /// A keep-alive between messages.
    KeepAlive(KeepAlive),
    /// A correctly framed message whose head is not SIP (not UTF-8, no
    /// start line); the stream stays usable (drop it).
    Invalid {
        /// Why it did not parse.
        error: SipError,
        /// The framed bytes.
        bytes: Bytes,
    },
}

/// Where the decoder is in the stream.
#[derive(Debug, Clone)]
enum State {
    /// Between messages or inside a head: the first `scanned` bytes of
    /// the buffer hold no blank line.
    Head { scanned: usize },
    /// A head is read; waiting for the rest of the message.
    Body(Box<Pending>),
    /// Discarding `left` more bytes: the body of a refused message.
    Skip { left: usize },
}

#[derive(Debug, Clone)]
struct Pending {
    /// The head, `None` when it is not SIP (framed anyway by its Content-Length).
    head: Option<Head>,
    /// End of the head's last line, start of the body, end of the message.
    end: usize,
    body_at: usize,
    total: usize,
}

/// Decoder/encoder for SIP over TCP.
#[derive(Debug, Clone)]
pub struct SipCodec {
    max: usize,
    state: State,
    examined: u64,
    /// We sent a CRLFCRLF ping: a lone CRLF is its pong, not the start
    /// of the peer's own ping.
    pong_due: bool,
}

impl Default for SipCodec {
    fn default() -> Self {
        SipCodec::with_max(MAX_MESSAGE)
    }
}

impl SipCodec {
    /// A codec with a custom size cap.
    pub fn with_max(max: usize) -> SipCodec {
        SipCodec {
            max,
            state: State::Head { scanned: 0 },
            examined: 0,
            pong_due: false,
        }
    }

    /// We have just sent a CRLFCRLF ping: the next lone CRLF is its pong,
    /// surfaced at once.
    pub fn expect_pong(&mut self) {
        self.pong_due = true;
    }

    /// Bytes looked at while framing so far (head searches and head
    /// reads): at most a few times the bytes received, however they were
    /// split into reads.
    pub fn examined(&self) -> u64 {
        self.examined
    }

    /// Reads what a head promises: `Some(frame)` to yield, `None` when the
    /// state changed (a body to wait for) or more bytes are needed.
    fn head(&mut self, buf: &mut BytesMut, scanned: usize) -> Result<Option<SipFrame>, SipError> {
        // The buffer only grows between calls under FramedRead; a caller
        // that empties it starts a fresh scan.
        let scanned = scanned.min(buf.len());
        // Between messages, CRLFs are keep-alives; a lone CR may become one.
        if buf.starts_with(b"\r\n") {
            return Ok(keep_alive(buf, &mut self.pong_due));
        }
        if buf[..] == *b"\r" {
            return Ok(None);
        }
        let Some((end, body_at)) = blank_line(buf, scanned) else {
            self.examined += (buf.len() - scanned) as u64;
            if buf.len() > self.max {
                // Answer from the complete lines read so far.
                let lines = buf.iter().rposition(|b| *b == b'\n').unwrap_or(0);
                let head = Head::read(&buf[..lines]).ok();
                return Err(self.too_large(head));
            }
            self.state = State::Head { scanned: buf.len() };
            return Ok(None);
        };
        self.examined += (body_at - scanned + end) as u64;
        let head = Head::read(&buf[..end]).ok();
        if body_at > self.max {
            return Err(self.too_large(head));
        }
        let length = match &head {
            Some(h) => content_length(&h.headers),
            None => raw_length(&buf[..end]),
        };
        let len = match length {
            Ok(Some(len)) => len,
            Ok(None) => {
                let cause = SipError::Missing("Content-Length");
                return Err(unframed(cause, head, 400, "Missing Content-Length"));
            }
            Err(cause) => return Err(unframed(cause, head, 400, "Bad Content-Length")),
        };
        let total = body_at.saturating_add(len);
        if total <= self.max {
            self.state = State::Body(Box::new(Pending {
                head,
                end,
                body_at,
                total,
            }));
            return Ok(None);
        }
        if len > MAX_SKIP {
            return Err(self.too_large(head));
        }
        // Too large to buffer but well framed: refuse it, skip its body,
        // and read on from the next message (RFC 3261 21.5.9).
        let bytes = buf.split_to(body_at).freeze();
        self.state = State::Skip { left: len };
        Ok(Some(match head {
            Some(mut h) => {
                h.refuse(513, "Message Too Large");
                SipFrame::Message(h.into_message(Bytes::new()))
            }
            None => SipFrame::Invalid {
                error: SipError::TooLarge { cap: self.max },
                bytes,
            },
        }))
    }

    fn too_large(&self, head: Option<Head>) -> SipError {
        let cause = SipError::TooLarge { cap: self.max };
        unframed(cause, head, 513, "Message Too Large")
    }
}

/// The error that closes the stream, with the answer to a request head.
fn unframed(cause: SipError, head: Option<Head>, status: u16, reason: &'static str) -> SipError {
    SipError::Unframed {
        cause: Box::new(cause),
        answer: head.and_then(|h| answer(h, status, reason)),
    }
}

/// `\r\n\r\n` is a ping, a lone `\r\n` a pong; `None` while `\r\n` or
/// `\r\n\r` may still become a ping split across reads, unless a pong is
/// due (`pong_due`: we pinged).
fn keep_alive(buf: &mut BytesMut, pong_due: &mut bool) -> Option<SipFrame> {
    if buf.starts_with(b"\r\n\r\n") {
        buf.advance(4);
        return Some(SipFrame::KeepAlive(KeepAlive::Ping));
    }
    // A ping must be answered (RFC 5626 4.4.1), so it must not be read as
    // two pongs; the cost is that a lone pong we did not ask for is
    // surfaced only when the peer's next bytes arrive.
    let waiting = buf.len() == 2 || (buf.len() == 3 && buf[2] == b'\r');
    if waiting && !(*pong_due && buf.len() == 2) {
        return None;
    }
    *pong_due = false;
    buf.advance(2);
    Some(SipFrame::KeepAlive(KeepAlive::Pong))
}

/// The response to a request head refused with `status` (its first fault
/// wins); none for a response, an ACK or a head without a readable Via.
fn answer(mut head: Head, status: u16, reason: &'static str) -> Option<Bytes> {
    head.refuse(status, reason);
    let msg = head.into_message(Bytes::new());
    let f = msg.fault()?;
    if f.method.as_deref().is_none_or(|m| m == "ACK") || msg.top_via().is_err() {
        return None;
    }
    // A To tag unique enough for a response that ends the transaction.
    let tag = format!("{:016x}", std::hash::RandomState::new().hash_one(&f.line));
    Some(msg.reply(f.status, f.reason, Some(&tag)).to_bytes())
}

/// Content-Length of a head that is not SIP, from its raw lines, so it
/// can still be framed and skipped.
fn raw_length(head: &[u8]) -> Result<Option<usize>, SipError> {
    let values = head.split(|b| *b == b'\n').filter_map(|line| {
        let colon = line.iter().position(|b| *b == b':')?;
        let name = line[..colon].trim_ascii();
        let is_length =
            name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l");
        is_length.then(|| std::str::from_utf8(&line[colon + 1..]).unwrap_or("?"))
    });
    length_of(values)
}

impl Decoder for SipCodec {
    type Item = SipFrame;
    type Error = SipError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<SipFrame>, SipError> {
        // Each pass consumes bytes or changes state towards a frame: at
        // most Skip -> Head -> Body -> frame.
        loop {
            match std::mem::replace(&mut self.state, State::Head { scanned: 0 }) {
                State::Skip { left } => {
                    let n = left.min(buf.len());
                    buf.advance(n);
                    if n < left {
                        self.state = State::Skip { left: left - n };
                        return Ok(None);
                    }
                }
                State::Head { scanned } => match self.head(buf, scanned)? {
                    Some(frame) => return Ok(Some(frame)),
                    None if matches!(self.state, State::Head { .. }) => return Ok(None),
                    None => {}
                },
                State::Body(p) => {
                    if buf.len() < p.total {
                        buf.reserve(p.total - buf.len());
                        self.state = State::Body(p);
                        return Ok(None);
                    }
                    let bytes = buf.split_to(p.total).freeze();
                    return Ok(Some(match p.head {
                        Some(h) => SipFrame::Message(h.into_message(bytes.slice(p.body_at..))),
                        None => SipFrame::Invalid {
                            error: Head::read(&bytes[..p.end])
                                .err()
                                .unwrap_or(SipError::Incomplete),
                            bytes,
                        },
                    }));
                }
            }
        }
    }
}

impl Encoder<Bytes> for SipCodec {
    type Error = SipError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), SipError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}
