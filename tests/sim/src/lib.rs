//! A FreeSWITCH stand-in whose Event Socket speaks exactly like FreeSWITCH
//! 1.10.12 (checked against the captures in `shared/fixtures/esl/`),
//! scriptable from Rust: the agent's integration tests, the demo and the
//! benchmarks run against it.
//!
//! Start one with [`Sim::start`] and drive it with [`SimHandle`]; or run a
//! standalone box with [`run`] and drive it with `api sim <action> ...`.
//!
//! Layout: `server`/`session` (listener and connections; the ESL framing
//! itself is `locus_esl::ServerCodec`), `verbs` (command lines read with
//! FreeSWITCH's matching rules), `subscription`,
//! `bus` (ordered event fan-out), `state` (the core), `channel`/`render`
//! (channel data as FreeSWITCH serialises it), `legs`/`apps`/`sofia`
//! (building blocks), `scripts` (actions), `api` (api commands), `sip`
//! (the box's SIP side, when [`SimConfig::sip_addr`] is set), `phone` (a
//! SIP phone that talks to the farm's proxy or a box).

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod api;
mod apps;
mod bus;
mod channel;
mod config;
mod error;
mod features;
mod handle;
mod legs;
pub mod phone;
mod render;
mod scripts;
mod server;
mod session;
mod sip;
mod sofia;
mod spawn;
mod stamp;
mod state;
mod states;
mod subscription;
pub mod templates;
mod verbs;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use channel::{Activity, CallState, Direction};
pub use config::{Directory, FS_VERSION, SimConfig, User, VANILLA_PASSWORD};
pub use error::SimError;
pub use handle::{DisconnectKind, SimHandle};
pub use scripts::conference::MemberId;
pub use scripts::{CallId, CallInfo, ChannelInfo};
pub use sip::{Answer, Health, SipBinding, SipSeen};
pub use state::Load;

/// The simulator.
#[derive(Debug)]
pub struct Sim;

impl Sim {
    /// Binds the ESL listener and starts serving; HEARTBEAT runs on
    /// `cfg.heartbeat` if set.
    pub async fn start(cfg: SimConfig) -> Result<SimHandle, SimError> {
        let listener = TcpListener::bind(cfg.esl_addr)
            .await
            .map_err(|source| SimError::Bind {
                addr: cfg.esl_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: cfg.esl_addr,
            source,
        })?;
        let heartbeat = cfg.heartbeat;
        let (sip_addr, proxy) = (cfg.sip_addr, cfg.proxy);
        let (tx, _) = tokio::sync::broadcast::channel(bus::QUEUE);
        let core = state::Core::new(cfg, tx);
        let shared = Arc::new(server::Shared::new(core, addr));
        shared
            .tracker
            .spawn(server::accept_loop(shared.clone(), listener));
        if let Some(every) = heartbeat {
            let s = shared.clone();
            shared.tracker.spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
                loop {
                    tokio::select! {
                        biased;
                        () = s.stop.cancelled() => return,
                        _ = tick.tick() => s.core().heartbeat(),
                    }
                }
            });
        }
        tracing::info!(esl.addr = %addr, "freeswitch simulator listening");
        let sip = match sip_addr {
            Some(at) => Some(sip::Endpoint::start(shared.clone(), at, proxy).await?),
            None => None,
        };
        Ok(SimHandle::new(shared, sip))
    }
}

/// Runs a simulator until `shutdown` is cancelled (`locus sim`).
pub async fn run(cfg: SimConfig, shutdown: CancellationToken) -> Result<(), SimError> {
    let node = cfg.node_id.clone();
    let sim = Sim::start(cfg).await?;
    tracing::info!(
        node.id = %node,
        esl.addr = %sim.esl_addr(),
        sip.addr = ?sim.sip_addr(),
        "simulator running"
    );
    shutdown.cancelled().await;
    sim.stop().await;
    Ok(())
}
