//! Errors of the simulator.

/// Why a simulator operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The ESL listener could not be bound.
    #[error("binding ESL listener on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The SIP socket could not be bound.
    #[error("binding SIP socket on {addr}: {source}")]
    SipBind {
        /// Address asked for.
        addr: std::net::SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// The directory file does not parse.
    #[error("directory file: {0}")]
    Directory(#[from] toml::de::Error),
    /// A directory file user is empty or listed twice.
    #[error("directory file: user {0:?} is empty or listed twice")]
    DirectoryUser(String),
    /// The user is not in the directory.
    #[error("no such user: {0}")]
    NoSuchUser(String),
    /// No call or channel with this id.
    #[error("no such call or channel: {0}")]
    NoSuchCall(String),
    /// The action does not fit the call's state (e.g. answering twice).
    #[error("call {call} is {state}, cannot {action}")]
    BadState {
        /// Call or channel id.
        call: String,
        /// Its state.
        state: String,
        /// What was asked.
        action: &'static str,
    },
    /// Nothing to act on (empty pickup group, empty valet slot, empty queue).
    #[error("nothing to {0}")]
    Nothing(String),
    /// `max_sessions` reached.
    #[error("max sessions ({0}) reached")]
    Capacity(u32),
    /// A text command (`api sim ...`) could not be parsed.
    #[error("usage: {0}")]
    Usage(&'static str),
}
