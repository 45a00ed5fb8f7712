//! [`SipError`]: everything that can go wrong reading or sending SIP.

/// A SIP message could not be parsed, framed or sent.
///
/// A parse error means the bytes are not a SIP message (dropped and
/// counted); a message that is SIP but faulty parses instead (see
/// [`super::StartLine::Faulty`]). [`SipError::Unframed`] on a stream means
/// "write its answer, if any, and close the connection": the byte stream
/// can no longer be trusted to be in step.
#[derive(Debug, thiserror::Error)]
pub enum SipError {
    /// The start line is neither a request line nor a status line.
    #[error("bad start line: {0}")]
    StartLine(String),
    /// A header line has no `:` or an empty name.
    #[error("bad header line: {0}")]
    HeaderLine(String),
    /// The message head (start line and headers) is not UTF-8.
    #[error("message head is not UTF-8")]
    NotUtf8,
    /// No blank line ends the headers.
    #[error("incomplete message head")]
    Incomplete,
    /// A header value could not be read as the header's type.
    #[error("bad {header} header: {value}")]
    HeaderValue { header: &'static str, value: String },
    /// A required header is missing (e.g. Content-Length on a stream).
    #[error("missing {0} header")]
    Missing(&'static str),
    /// A URI could not be parsed.
    #[error("bad URI: {0}")]
    Uri(String),
    /// A message exceeds the size cap.
    #[error("message larger than {cap} bytes")]
    TooLarge { cap: usize },
    /// A stream lost its framing (RFC 3261 18.3): no readable
    /// Content-Length, or a head or body too large to skip. The connection
    /// closes after `answer` (400 or 513 to the request whose head was
    /// read; `None` for a response or an unreadable head) is written.
    #[error("stream framing lost: {cause}")]
    Unframed {
        /// What could not be framed.
        cause: Box<SipError>,
        /// The response to send before closing.
        answer: Option<bytes::Bytes>,
    },
    /// Max-Forwards is already 0 (RFC 3261 16.3: answer 483).
    #[error("Max-Forwards exhausted")]
    TooManyHops,
    /// No listener of the wanted transport and address family.
    #[error("no {0} listener for this address family")]
    NoListener(&'static str),
    /// A connection's write queue is full or closed.
    #[error("connection to {0} is busy or closed")]
    ConnectionBusy(std::net::SocketAddr),
    /// A connection cap is reached (inbound total or per source IP, or outbound).
    #[error("connection limit reached ({0})")]
    ConnectionLimit(&'static str),
    /// Socket error.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl SipError {
    /// What to write before closing a stream that lost its framing.
    pub fn answer(&self) -> Option<&bytes::Bytes> {
        match self {
            SipError::Unframed { answer, .. } => answer.as_ref(),
            _ => None,
        }
    }
}
