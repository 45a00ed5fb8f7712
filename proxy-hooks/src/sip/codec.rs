//! [`SipCodec`]: SIP over a byte stream (TCP), RFC 3261 18.3: messages are
//! framed by Content-Length, which is therefore required; CRLF keep-alives
//! (RFC 5626 3.5.1) between messages are items of their own. No I/O, no
//! policy: the transport decides what to answer and when to close.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::SipError;
use super::message::SipMessage;
use super::parse::head_end;

/// Largest message accepted on a stream (head + body).
pub const MAX_MESSAGE: usize = 64 * 1024;

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
    /// A whole, parsed message.
    Message(SipMessage),
    /// A keep-alive between messages.
    KeepAlive(KeepAlive),
    /// A correctly framed message that does not parse; the stream stays
    /// usable (answer 400 or drop).
    Invalid {
        /// Why it did not parse.
        error: SipError,
        /// The framed bytes.
        bytes: Bytes,
    },
}

/// Decoder/encoder for SIP over TCP.
#[derive(Debug, Clone)]
pub struct SipCodec {
    max: usize,
}

impl Default for SipCodec {
    fn default() -> Self {
        SipCodec { max: MAX_MESSAGE }
    }
}

impl SipCodec {
    /// A codec with a custom size cap.
    pub fn with_max(max: usize) -> SipCodec {
        SipCodec { max }
    }
}

impl Decoder for SipCodec {
    type Item = SipFrame;
    type Error = SipError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<SipFrame>, SipError> {
        if buf.starts_with(b"\r\n") {
            if buf.starts_with(b"\r\n\r\n") {
                let _ = buf.split_to(4);
                return Ok(Some(SipFrame::KeepAlive(KeepAlive::Ping)));
            }
            // "\r\n" and "\r\n\r" may still become a ping split across reads:
            // wait for the next byte. A ping must be answered (RFC 5626 4.4.1),
            // so it must not be read as two pongs; the cost is that a lone pong
            // is surfaced only when the peer's next bytes arrive.
            if buf.len() == 2 || (buf.len() == 3 && buf[2] == b'\r') {
                return Ok(None);
            }
            let _ = buf.split_to(2);
            return Ok(Some(SipFrame::KeepAlive(KeepAlive::Pong)));
        }
        let Some((_, body_at)) = head_end(buf) else {
            if buf.len() > self.max {
                return Err(SipError::TooLarge { cap: self.max });
            }
            return Ok(None);
        };
        if body_at > self.max {
            return Err(SipError::TooLarge { cap: self.max });
        }
        let length = stream_content_length(&buf[..body_at])?;
        let total = body_at
            .checked_add(length)
            .ok_or(SipError::TooLarge { cap: self.max })?;
        if total > self.max {
            return Err(SipError::TooLarge { cap: self.max });
        }
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        let bytes = buf.split_to(total).freeze();
        Ok(Some(match SipMessage::parse_bytes(bytes.clone()) {
            Ok(msg) => SipFrame::Message(msg),
            Err(error) => SipFrame::Invalid { error, bytes },
        }))
    }
}

/// Content-Length from a raw head; framing needs it even if the rest of
/// the message turns out malformed.
fn stream_content_length(head: &[u8]) -> Result<usize, SipError> {
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii();
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l") {
            let value = std::str::from_utf8(line[colon + 1..].trim_ascii())
                .map_err(|_| SipError::NotUtf8)?;
            return value.parse().map_err(|_| SipError::HeaderValue {
                header: "Content-Length",
                value: value.chars().take(40).collect(),
            });
        }
    }
    Err(SipError::Missing("Content-Length"))
}

impl Encoder<Bytes> for SipCodec {
    type Error = SipError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), SipError> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}
