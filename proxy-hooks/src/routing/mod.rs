//! The routing engine: what a request asks ([`request`]), the farm as
//! routing reads it ([`snapshot`], kept current by [`sync`]), and the
//! decision itself ([`engine`]: rules in `engine.rs`, [`locality`] for
//! features, [`standard`] for plain calls, [`rendezvous`] placement,
//! [`inflight`] counts, [`affinity`] for challenged retries), configured
//! by [`config`] (`[proxy.routing]`). No SIP and no I/O here except the
//! sync task's store reads: the proxy ([`crate::farm`]) and the HTTP hook
//! ([`crate::hook`]) both call [`engine::Engine::route`].

pub mod affinity;
pub mod config;
pub mod engine;
pub(crate) mod features;
pub mod inflight;
pub(crate) mod locality;
pub mod rendezvous;
pub mod request;
pub mod snapshot;
pub(crate) mod standard;
pub mod sync;
