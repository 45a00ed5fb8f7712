//! The Locus SIP proxy and the HTTP route hook (issue 3).
//!
//! * [`server`]: [`server::ProxyConfig`] (`[proxy]`) and [`server::start`],
//!   which assembles everything below into a running `locus proxy`.
//! * [`proxy`]: the proxy core (RFC 3261 section 16): transactions,
//!   forwarding, failover, forking, and the [`proxy::Router`] seam.
//!
//! * [`rendezvous`]: rendezvous hashing, wherever a key is placed on a node.
//! * [`snapshot`]: [`FarmSnapshot`], the farm as routing reads it, built
//!   from the store's [`locus_schema::FarmView`].
//! * [`sync`]: [`FarmSync`], which keeps the snapshot current (pub/sub
//!   notices, coalesced, plus a periodic full read) in an `ArcSwap`.
//! * [`config`]: [`RoutingConfig`], with FreeSWITCH vanilla defaults.
//! * [`engine`]: [`Engine::route`], the pure routing decision (rules in
//!   `engine.rs`, `locality.rs`, `standard.rs`), with [`InFlight`] counts
//!   and [`Affinity`] (the retry of a challenged request to the box that
//!   challenged it).
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
//!   ([`registrar::Registrar`], the [`proxy::Location`] implementation).

pub mod affinity;
pub mod config;
pub mod engine;
pub mod farm;
mod features;
pub mod health;
pub mod hook;
pub mod inflight;
mod locality;
pub mod policy;
pub mod proxy;
pub mod registrar;
pub mod rendezvous;
pub mod request;
pub mod server;
pub mod sip;
pub mod snapshot;
mod standard;
pub mod sync;

pub use affinity::{Affinity, AffinityConfig, Pinned};
pub use config::{Algorithm, ConfigError, RoutingConfig, SyncConfig};
pub use engine::Engine;
pub use farm::FarmRouter;
pub use features::Feature;
pub use health::{Health, HealthConfig};
pub use inflight::InFlight;
pub use policy::{Policy, PolicyConfig, PolicyError};
pub use request::{Decision, Method, RouteRequest, Rule, Source};
pub use snapshot::{FarmSnapshot, Node};
pub use sync::FarmSync;
