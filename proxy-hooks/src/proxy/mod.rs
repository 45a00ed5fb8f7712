//! The SIP proxy (RFC 3261 section 16): the core (transactions, forwarding,
//! failover) and the [`router::Router`] seam it asks for decisions.

pub mod router;

pub use router::{Dest, Flow, Fork, Label, Location, Router, Target, Verdict};
