//! The ESL wire codec: a header/body state machine with size caps.
//!
//! A message is `Name: value` lines ended by a blank line, then exactly
//! `Content-Length` bytes of body when that header is present. FreeSWITCH
//! only sends LF; CRLF is accepted too. The codec does no I/O and no policy:
//! any `Err` from [`EslCodec::decode`] means the byte stream can no longer
//! be trusted (the next frame boundary is unknown), so the connection must
//! be dropped and re-established; it never panics and never skips input.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::command::Command;
use crate::error::EslError;
use crate::frame::Frame;

/// Default cap on one header block (64 KiB; the largest seen is ~60 bytes).
pub const DEFAULT_MAX_HEADER: usize = 64 * 1024;
/// Default cap on one body (8 MiB; the largest event seen is ~14 KB, but
/// `show channels as json` on a busy box can reach megabytes).
pub const DEFAULT_MAX_BODY: usize = 8 * 1024 * 1024;

/// Size caps for one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest header block, blank line included.
    pub max_header: usize,
    /// Largest `Content-Length` accepted.
    pub max_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_header: DEFAULT_MAX_HEADER,
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

/// A decoded header block: the optional command line (server side) and the
/// `Name: value` headers in order.
pub(crate) struct Block {
    pub(crate) line: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Option<Bytes>,
}

#[derive(Debug)]
enum State {
    /// Looking for the blank line; `scanned` bytes hold only complete,
    /// non-blank lines, so scanning resumes there (no quadratic rescans).
    Head { scanned: usize },
    /// Header block parsed; waiting for `len` body bytes.
    Body {
        line: Option<String>,
        headers: Vec<(String, String)>,
        len: usize,
    },
}

/// The shared state machine behind the client and server codecs.
#[derive(Debug)]
pub(crate) struct BlockDecoder {
    limits: Limits,
    /// Server side: the first line is a command (`api status`), not a header.
    command_first: bool,
    state: State,
}

impl BlockDecoder {
    pub(crate) fn new(limits: Limits, command_first: bool) -> Self {
        Self {
            limits,
            command_first,
            state: State::Head { scanned: 0 },
        }
    }

    pub(crate) fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Block>, EslError> {
        loop {
            match &mut self.state {
                State::Head { scanned } => {
                    if *scanned == 0 {
                        skip_blank_lines(src);
                    }
                    let Some(end) = find_head_end(src, scanned) else {
                        if src.len() > self.limits.max_header {
                            return Err(EslError::HeaderTooLarge {
                                limit: self.limits.max_header,
                            });
                        }
                        return Ok(None);
                    };
                    if end > self.limits.max_header {
                        return Err(EslError::HeaderTooLarge {
                            limit: self.limits.max_header,
                        });
                    }
                    let head = src.split_to(end);
                    let (line, headers) = parse_head(&head, self.command_first)?;
                    let len = content_length(&headers, self.limits.max_body)?;
                    match len {
                        None => {
                            self.state = State::Head { scanned: 0 };
                            return Ok(Some(Block {
                                line,
                                headers,
                                body: None,
                            }));
                        }
                        Some(len) => self.state = State::Body { line, headers, len },
                    }
                }
                State::Body { len, .. } => {
                    let len = *len;
                    if src.len() < len {
                        src.reserve(len - src.len());
                        return Ok(None);
                    }
                    let body = src.split_to(len).freeze();
                    let prev = std::mem::replace(&mut self.state, State::Head { scanned: 0 });
                    if let State::Body { line, headers, .. } = prev {
                        return Ok(Some(Block {
                            line,
                            headers,
                            body: Some(body),
                        }));
                    }
                }
            }
        }
    }

    /// True between messages (nothing half-read).
    pub(crate) fn is_idle(&self, src: &BytesMut) -> bool {
        matches!(self.state, State::Head { .. }) && src.iter().all(|&b| b == b'\n' || b == b'\r')
    }
}

/// Drops stray blank lines between messages (never sent by FreeSWITCH, but
/// harmless and common in hand-written clients and tests).
fn skip_blank_lines(src: &mut BytesMut) {
    let n = src
        .iter()
        .take_while(|&&b| b == b'\n' || b == b'\r')
        .count();
    // Keep a lone trailing CR: it may start a CRLF of the next block.
    let n = if n == src.len() && src.last() == Some(&b'\r') {
        n - 1
    } else {
        n
    };
    let _ = src.split_to(n);
}

/// Index just past the blank line ending the header block, if buffered.
fn find_head_end(src: &[u8], scanned: &mut usize) -> Option<usize> {
    let mut start = *scanned;
    while let Some(nl) = src[start..].iter().position(|&b| b == b'\n') {
        let line = &src[start..start + nl];
        if line.is_empty() || line == b"\r" {
            return Some(start + nl + 1);
        }
        start += nl + 1;
        *scanned = start;
    }
    None
}

/// Outer headers in wire order.
type Headers = Vec<(String, String)>;

fn parse_head(head: &[u8], command_first: bool) -> Result<(Option<String>, Headers), EslError> {
    let text = std::str::from_utf8(head).map_err(|_| EslError::HeaderNotUtf8)?;
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .filter(|l| !l.is_empty());
    let line = if command_first {
        lines.next().map(str::to_owned)
    } else {
        None
    };
    let mut headers = Vec::new();
    for l in lines {
        let (k, v) = l
            .split_once(':')
            .filter(|(k, _)| !k.is_empty() && !k.contains(' '))
            .ok_or_else(|| EslError::MalformedHeader(l.chars().take(80).collect()))?;
        headers.push((k.to_owned(), v.strip_prefix(' ').unwrap_or(v).to_owned()));
    }
    Ok((line, headers))
}

fn content_length(headers: &[(String, String)], max: usize) -> Result<Option<usize>, EslError> {
    let Some((_, v)) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("Content-Length"))
    else {
        return Ok(None);
    };
    let t = v.trim();
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EslError::BadContentLength(v.chars().take(40).collect()));
    }
    let len: usize = t
        .parse()
        .map_err(|_| EslError::BadContentLength(v.chars().take(40).collect()))?;
    if len > max {
        return Err(EslError::BodyTooLarge { len, limit: max });
    }
    Ok(Some(len))
}

/// Client-side codec: decodes what FreeSWITCH sends into [`Frame`]s,
/// encodes [`Command`]s (and, for servers and tests, [`Frame`]s).
#[derive(Debug)]
pub struct EslCodec {
    inner: BlockDecoder,
}

impl EslCodec {
    /// A codec with the given size caps.
    pub fn new(limits: Limits) -> Self {
        Self {
            inner: BlockDecoder::new(limits, false),
        }
    }
}

impl Default for EslCodec {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder for EslCodec {
    type Item = Frame;
    type Error = EslError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, EslError> {
        Ok(self
            .inner
            .decode(src)?
            .map(|b| Frame::new(b.headers, b.body)))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, EslError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if self.inner.is_idle(src) => Ok(None),
            None => Err(EslError::Truncated { pending: src.len() }),
        }
    }
}

impl Encoder<Command> for EslCodec {
    type Error = EslError;

    fn encode(&mut self, cmd: Command, dst: &mut BytesMut) -> Result<(), EslError> {
        cmd.write_to(dst)
    }
}

impl Encoder<&Frame> for EslCodec {
    type Error = EslError;

    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), EslError> {
        frame.write_to(dst)
    }
}
