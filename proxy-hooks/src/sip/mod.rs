//! SIP message layer and transports of the proxy (RFC 3261 sections 7, 18,
//! 19 and 20; RFC 5626 keep-alives).
//!
//! * [`message`]: [`SipMessage`], the adapter every other module goes
//!   through (parse, modify, serialise); see `docs/decisions.md`, "SIP
//!   parsing", for why it is our own parser and not `rsip`.
//! * [`header`]: ordered raw headers, compact names, list splitting, params.
//! * [`fields`]: the typed values a proxy reads ([`Via`], [`NameAddr`],
//!   [`Replaces`]).
//! * [`uri`]: [`Uri`], `sip:`/`sips:` URIs, and `tel:` ones ([`tel`],
//!   RFC 3966) where a number may stand.
//! * [`codec`]: [`SipCodec`], stream framing for TCP.
//! * [`transport`]: UDP and TCP listeners feeding one queue, and `send`.

pub mod codec;
mod conn;
mod error;
pub mod fields;
pub mod header;
pub mod message;
mod parse;
pub mod probe;
mod reply;
mod socket;
pub mod tel;
pub mod transport;
pub mod uri;

pub use codec::{KeepAlive, MAX_MESSAGE, SipCodec, SipFrame};
pub use error::SipError;
pub use fields::{NameAddr, NameAddrParts, Replaces, Via, addr_user_host, to_tag};
pub use header::{Header, Headers, Params};
pub use message::{Fault, SipMessage, StartLine};
pub use parse::{Datagram, parse_datagram};
pub use transport::{
    ConnEvent, ConnHook, ConnId, ConnWatch, Inbound, SipTransport, Transport, TransportConfig,
    TransportStats,
};
pub use uri::{Scheme, Uri, UriParts, bare_user};
