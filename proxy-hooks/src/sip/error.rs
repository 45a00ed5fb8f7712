//! [`SipError`]: everything that can go wrong reading or sending SIP.

/// A SIP message could not be parsed, framed or sent.
///
/// Parse errors mean "answer 400 (requests) or drop (responses)"; framing
/// errors on a stream mean "close the connection": the byte stream can no
/// longer be trusted to be in step.
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
    /// Content-Length says more bytes than the message carries (RFC 3261 18.3).
    #[error("body shorter than Content-Length ({have} < {want})")]
    Truncated { have: usize, want: usize },
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
