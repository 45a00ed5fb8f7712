//! The SIP proxy (RFC 3261 section 16): the core (transactions, forwarding,
//! failover) and the [`router::Router`] seam it asks for decisions.
//!
//! * [`core`]: [`Proxy`], the receive loop; `validate`: the request
//!   checks (RFC 3261 16.3, RFC 4475); `stateless`: ACK for 2xx and the
//!   response path.
//! * `txn`, `branch`: a server transaction and its client branches;
//!   `release`: ACK and BYE for a late 2xx from a branch given up.
//! * [`config`]: [`CoreConfig`] (`[proxy.core]`).
//! * [`stats`]: the counters, [`ProxyStats`].
//! * [`ids`], [`addr`], [`build`]: branches and loop detection, our
//!   addresses and next hops, the requests the proxy builds.
//! * [`keys`]: [`FlowKeys`], signed flow tokens and Record-Routes
//!   (`[proxy.security]`).
//! * [`static_router`]: [`StaticRouter`], fixed targets (tests, benchmark).

pub mod addr;
mod branch;
pub mod build;
pub mod config;
pub mod core;
pub mod ids;
pub mod keys;
mod release;
pub mod router;
mod stateless;
pub mod static_router;
pub mod stats;
mod txn;
mod validate;

pub use config::{CoreConfig, CoreConfigError};
pub use core::Proxy;
pub use keys::{FlowKeys, PreloadedRoute, Secret, SecurityConfig, TokenError};
pub use router::{
    Dest, Flow, Fork, Label, Location, NextHop, Pass, RouteMark, Router, Target, Verdict,
};
pub use static_router::StaticRouter;
pub use stats::{DropReason, ProxyStats};
