//! The Locus SIP proxy and the HTTP route hook (issue 3).
//!
//! * [`server`]: [`server::ProxyConfig`] (`[proxy]`) and [`server::start`],
//!   which assembles everything below into a running `locus proxy`.
//! * [`proxy`]: the proxy core (RFC 3261 section 16): transactions,
//!   forwarding, failover, forking, and the [`proxy::Router`] seam.
//!
//! * [`routing`]: the routing engine, apart from SIP: [`FarmSnapshot`]
//!   (the farm as routing reads it, kept current by [`FarmSync`]),
//!   [`Engine::route`] (rules 1-7 over [`RouteRequest`]), [`InFlight`]
//!   counts, [`Affinity`] (the retry of a challenged request goes to the
//!   box that challenged it), rendezvous placement, and [`RoutingConfig`]
//!   (`[proxy.routing]`, FreeSWITCH vanilla defaults).
//!
//! * [`sip`]: the SIP message layer (own parser, see docs/decisions.md),
//!   the TCP codec and the UDP/TCP transport.
//!
//! * [`health`]: OPTIONS health probes ([`Health`]), folded into
//!   [`Node::up`] by [`FarmSnapshot::build_with`].
//!
//! * [`hook`]: the HTTP route hook for Kamailio/OpenSIPS ([`hook::router`]).
//!
//! * [`policy`]: trust ([`Policy`]: farm nodes, carrier trunks, domains,
//!   `X-Locus-*` stripping) and rule 6 tables ([`PolicyConfig`]).
//! * [`farm`]: [`FarmRouter`], the production [`proxy::Router`]: rules 1-7.
//! * [`registrar`]: REGISTER mirroring into `reg:` and rule 7 lookups
//!   ([`registrar::Registrar`], the [`proxy::Location`] implementation),
//!   keepalives toward phones, mid-registrar mode.
//! * [`cluster`]: the farm's proxies: a lease each in the store (no two
//!   under one id), siblings trusted, a gone proxy's phones taken over.

pub mod cluster;
pub mod farm;
pub mod health;
pub mod hook;
pub mod policy;
pub mod proxy;
pub mod registrar;
pub mod routing;
pub mod server;
pub mod sip;

pub use farm::FarmRouter;
pub use health::{Health, HealthConfig};
pub use policy::{Policy, PolicyConfig, PolicyError};
pub use routing::affinity::{Affinity, AffinityConfig, Pinned};
pub use routing::config::{Algorithm, ConfigError, RoutingConfig, SyncConfig};
pub use routing::engine::Engine;
pub use routing::features::Feature;
pub use routing::inflight::InFlight;
pub use routing::request::{Decision, Method, RouteRequest, Rule, Source};
pub use routing::snapshot::{FarmSnapshot, Node};
pub use routing::sync::FarmSync;
