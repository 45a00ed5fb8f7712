//! The subcommands other than `demo`: thin glue from config to libraries.

use std::io::Write;
use std::sync::Arc;

use anyhow::Context;
use locus_schema::{Keys, NodeId, NodeState, Store};
use tokio_util::sync::CancellationToken;

use crate::cli::{InspectArgs, NodeAction, NodeArgs, SimArgs};
use crate::config::{Config, redact_url};
use crate::inspect::{self, What};

/// Opens the configured store.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn Store>> {
    locus_schema::store::open(
        &cfg.redis.url,
        Keys::new(cfg.redis.prefix.clone()),
        cfg.redis.timeout,
    )
    .await
    .with_context(|| format!("opening store {}", redact_url(&cfg.redis.url)))
}

/// `locus agent`.
pub async fn agent(cfg: &Config, token: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    tracing::info!(node.id = %cfg.agent.node_id, esl = %cfg.agent.esl.addr, redis = %redact_url(&cfg.redis.url), "agent starting");
    locus_agent::run(cfg.agent.clone(), store, token).await
}

/// `locus proxy`.
pub async fn proxy(cfg: &Config, token: CancellationToken) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    let running = locus_proxy::server::start(cfg.proxy.clone(), store, token.clone())
        .await
        .context("starting the proxy")?;
    token.cancelled().await;
    running.closed().await;
    Ok(())
}

/// `locus inspect`.
pub async fn inspect(
    cfg: &Config,
    args: &InspectArgs,
    token: CancellationToken,
) -> anyhow::Result<()> {
    let store = open_store(cfg).await?;
    if args.what == What::Watch {
        let mut rx = store
            .subscribe()
            .await
            .context("subscribing to change notices")?;
        loop {
            tokio::select! {
                _ = token.cancelled() => return Ok(()),
                msg = rx.recv() => match msg {
                    // A closed pipe (`| head`) ends the watch quietly.
                    Some(m) => if writeln!(std::io::stdout(), "{} {m}", locus_agent::now_ms()).is_err() {
                        return Ok(());
                    },
                    None => anyhow::bail!("subscription closed"),
                },
            }
        }
    }
    if args.what == What::Registrations {
        let regs = match &args.aor {
            Some(aor) => {
                let (user, domain) = aor.split_once('@').context("the AOR must be user@domain")?;
                let found = store
                    .bindings(domain, user)
                    .await
                    .context("reading the registrations")?;
                found
                    .into_iter()
                    .map(|b| (domain.to_lowercase(), user.to_lowercase(), b))
                    .collect()
            }
            None => store
                .all_bindings(args.max_users)
                .await
                .context("reading the registrations")?,
        };
        let now = locus_agent::now_ms();
        let _ = write!(
            std::io::stdout(),
            "{}",
            inspect::render_registrations(&regs, args.json, now)
        );
        return Ok(());
    }
    let farm = store.read_farm().await.context("reading the farm")?;
    // `| head` closing the pipe is not an error worth a panic.
    let _ = write!(
        std::io::stdout(),
        "{}",
        inspect::render(&farm, args.what, args.json, locus_agent::now_ms())
    );
    Ok(())
}

/// `locus node drain|undrain <id>`.
pub async fn node(cfg: &Config, args: &NodeArgs) -> anyhow::Result<()> {
    let id = NodeId::new(args.id.clone())?;
    let store = open_store(cfg).await?;
    let state = match args.action {
        NodeAction::Drain => NodeState::Draining,
        NodeAction::Undrain => NodeState::Active,
    };
    store
        .set_node_state(&id, state)
        .await
        .context("setting node state")?;
    println!(
        "node {id}: {}",
        if state == NodeState::Draining {
            "draining"
        } else {
            "active"
        }
    );
    Ok(())
}

/// `locus sim`.
pub async fn sim(args: &SimArgs, token: CancellationToken) -> anyhow::Result<()> {
    let cfg = sim_config(args)?;
    locus_sim::run(cfg, token).await.context("simulator")
}

/// The simulated box `locus sim` runs: vanilla (INVITEs challenged, as
/// `auth-calls`) unless `--no-auth-calls`.
fn sim_config(args: &SimArgs) -> anyhow::Result<locus_sim::SimConfig> {
    let (domain, directory) = match &args.directory {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let (domain, dir) = locus_sim::Directory::from_toml(&text)
                .with_context(|| format!("directory file {}", path.display()))?;
            (domain.unwrap_or_else(|| args.domain.clone()), dir)
        }
        None => (args.domain.clone(), locus_sim::Directory::vanilla()),
    };
    let cfg = locus_sim::SimConfig {
        esl_addr: args.esl,
        password: args.password.clone(),
        node_id: args.node_id.clone(),
        hostname: args.node_id.clone(),
        domain,
        directory,
        // A farm node: phones reach it through the proxy (captures 20-22).
        from_host: args.proxy.map(|p| p.to_string()),
        sip_addr: args.sip,
        proxy: args.proxy,
        auth_calls: !args.no_auth_calls,
        ..locus_sim::SimConfig::default()
    };
    Ok(cfg)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    fn sim_args(argv: &[&str]) -> SimArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Sim(a) => a,
            _ => panic!("not `locus sim`"),
        }
    }

    #[test]
    fn sim_challenges_invites_unless_told_not_to() {
        let vanilla = sim_config(&sim_args(&["locus", "sim"])).unwrap();
        assert!(
            vanilla.auth_calls,
            "vanilla internal profile: auth-calls=true"
        );
        let trusted = sim_config(&sim_args(&["locus", "sim", "--no-auth-calls"])).unwrap();
        assert!(!trusted.auth_calls);
        assert!(Cli::try_parse_from(["locus", "sim", "--auth-calls"]).is_err());
    }
}
