//! The one error type of the crate: framing, protocol, command and
//! connection failures, each telling the caller whether the connection is
//! still usable.

use crate::event::EventError;

/// Everything that can go wrong talking ESL.
#[derive(Debug, thiserror::Error)]
pub enum EslError {
    /// Socket read/write failed.
    #[error("esl i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The header block grew past the configured cap without a blank line.
    #[error("esl header block exceeds {limit} bytes")]
    HeaderTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// `Content-Length` announces a body larger than the configured cap.
    #[error("esl body of {len} bytes exceeds {limit} bytes")]
    BodyTooLarge {
        /// Announced length.
        len: usize,
        /// The cap in bytes.
        limit: usize,
    },
    /// A header line is not `Name: value`.
    #[error("malformed esl header line: {0:?}")]
    MalformedHeader(String),
    /// `Content-Length` is not a decimal number.
    #[error("bad esl Content-Length: {0:?}")]
    BadContentLength(String),
    /// The peer closed the connection in the middle of a message.
    #[error("esl stream ended inside a message ({pending} bytes pending)")]
    Truncated {
        /// Bytes of the unfinished message.
        pending: usize,
    },
    /// The header block is not UTF-8.
    #[error("esl header block is not utf-8")]
    HeaderNotUtf8,
    /// An event body could not be parsed (the framing is intact).
    #[error("esl event: {0}")]
    Event(#[from] EventError),
    /// A command, header or value would break the framing (contains CR/LF).
    #[error("esl command or header contains a line break: {0:?}")]
    LineBreak(String),
    /// A frame built for sending has a `Content-Length` that does not match its body.
    #[error("esl frame Content-Length does not match its body")]
    LengthMismatch,
    /// TCP connect did not finish within `connect_timeout`.
    #[error("esl connect to {addr} timed out")]
    ConnectTimeout {
        /// Where we tried to connect.
        addr: String,
    },
    /// FreeSWITCH refused the password (`-ERR invalid`).
    #[error("esl authentication rejected by FreeSWITCH ({0}): check the ESL password")]
    AuthRejected(String),
    /// FreeSWITCH sent a frame the protocol does not allow at this point.
    #[error("unexpected esl frame: expected {expected}, got content-type {got:?}")]
    Unexpected {
        /// What the protocol requires here.
        expected: &'static str,
        /// The `Content-Type` received (empty if none).
        got: String,
    },
    /// No reply within `command_timeout` (or `connect_timeout` during auth).
    #[error("esl {0} timed out")]
    Timeout(&'static str),
    /// The connection closed before the reply arrived, or is closed.
    #[error("esl connection closed")]
    Disconnected,
    /// A `command/reply` answered `-ERR ...` (e.g. `-ERR command not found`).
    #[error("esl command failed: {0}")]
    CommandFailed(String),
    /// An `api/response` body was `-ERR ...` (other than `-ERR no reply`).
    #[error("freeswitch api error: {0}")]
    Api(String),
    /// An `api/response` body was exactly `-ERR no reply`: the command ran
    /// but produced no output (e.g. `hash select` of an absent key). Often
    /// means "empty" rather than failure.
    #[error("freeswitch api: no reply")]
    NoReply,
}

impl EslError {
    /// True when the connection cannot be used any more and must be dropped
    /// and re-established (with backoff): framing errors, i/o, disconnects.
    /// False for per-command failures on a healthy connection.
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            Self::Event(_)
                | Self::LineBreak(_)
                | Self::LengthMismatch
                | Self::CommandFailed(_)
                | Self::Api(_)
                | Self::NoReply
                | Self::Timeout(_)
        )
    }

    /// Maps an `-ERR ...` api body to its error, anything else to `Ok`.
    pub(crate) fn check_api_body(body: String) -> Result<String, EslError> {
        match body.strip_prefix("-ERR") {
            Some(rest) if rest.trim() == "no reply" => Err(EslError::NoReply),
            Some(rest) => Err(EslError::Api(rest.trim().to_owned())),
            None => Ok(body),
        }
    }
}
