//! Agents and boxes under test: the `[agent]` TOML every test builds its
//! config from, a spawned agent with its metrics, simulated boxes, and a
//! whole farm (Redis + boxes + agents) ready to use.

use std::net::SocketAddr;
use std::sync::Arc;

use locus_agent::{AgentConfig, Metrics};
use locus_schema::testing::RedisServer;
use locus_schema::{NodeId, Store};
use locus_sim::{Sim, SimConfig, SimHandle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{DOMAIN, WAIT, esl_up, init_tracing, open_store, start_redis, wait_for};

/// Knobs of one agent under test; [`AgentOpts::toml`] renders them.
#[derive(Clone, Debug)]
pub struct AgentOpts {
    pub password: String,
    pub lease: &'static str,
    pub refresh: &'static str,
    pub reap_after: &'static str,
    pub http: Option<SocketAddr>,
    pub max_body: usize,
    pub liveness: &'static str,
}

impl Default for AgentOpts {
    fn default() -> Self {
        Self {
            password: "ClueCon".into(),
            lease: "2s",
            refresh: "300ms",
            reap_after: "60s",
            http: None,
            max_body: 8 * 1024 * 1024,
            liveness: "65s",
        }
    }
}

impl AgentOpts {
    /// The `[agent]` section (every field, as examples/locus.toml has them).
    pub fn toml(&self, node: &str, esl_addr: &str) -> String {
        let http = self
            .http
            .map(|a| format!("http = \"{a}\"\n"))
            .unwrap_or_default();
        format!(
            r#"node_id = "{node}"
sip_uri = "sip:127.0.0.1:5060"
role = "active"
weight = 100
lease = "{lease}"
refresh = "{refresh}"
reap_after = "{reap}"
{http}
[esl]
addr = "{esl_addr}"
password = "{pw}"
connect_timeout = "3s"
command_timeout = "5s"
liveness = "{liveness}"
event_queue = 65536
max_body = {max_body}
backoff_base = "50ms"
backoff_cap = "500ms"

[model]
ext_var = "dialed_extension"
group_var = "called_party_callgroup"
caller_group_var = "callgroup"
"#,
            lease = self.lease,
            refresh = self.refresh,
            reap = self.reap_after,
            pw = self.password,
            liveness = self.liveness,
            max_body = self.max_body,
        )
    }

    /// The parsed and validated config.
    pub fn config(&self, node: &str, esl_addr: &str) -> AgentConfig {
        let cfg: AgentConfig = toml::from_str(&self.toml(node, esl_addr)).expect("agent toml");
        cfg.validate().expect("valid agent config");
        cfg
    }
}

/// Default config of `node` against `esl_addr`.
pub fn agent_config(node: &str, esl_addr: &str) -> AgentConfig {
    AgentOpts::default().config(node, esl_addr)
}

/// A running agent task.
pub struct AgentHandle {
    pub id: NodeId,
    pub token: CancellationToken,
    pub join: JoinHandle<anyhow::Result<()>>,
    pub metrics: Arc<Metrics>,
}

impl AgentHandle {
    /// Graceful stop: cancel, then wait (bounded) for the task.
    pub async fn stop(self) {
        self.token.cancel();
        let res = tokio::time::timeout(WAIT, self.join)
            .await
            .expect("agent did not stop in time")
            .expect("agent task panicked");
        res.expect("agent returned an error");
    }
}

/// Spawns the real agent with its own metrics.
pub fn spawn_agent(cfg: AgentConfig, store: Arc<dyn Store>) -> AgentHandle {
    let metrics = Metrics::new();
    let token = CancellationToken::new();
    let id = cfg.node_id.clone();
    let join = tokio::spawn(locus_agent::run_with_metrics(
        cfg,
        store,
        metrics.clone(),
        token.clone(),
    ));
    AgentHandle {
        id,
        token,
        join,
        metrics,
    }
}

/// A simulated box named `name` on port 0, serving [`DOMAIN`], without a
/// periodic HEARTBEAT (tests fire one when they want it).
pub async fn start_sim(name: &str) -> SimHandle {
    start_sim_with(SimConfig {
        node_id: name.into(),
        hostname: name.into(),
        domain: DOMAIN.into(),
        heartbeat: None,
        ..SimConfig::default()
    })
    .await
}

/// A simulated box with a custom config.
pub async fn start_sim_with(cfg: SimConfig) -> SimHandle {
    Sim::start(cfg).await.expect("start simulator")
}

/// One box of a test farm.
pub struct Node {
    pub id: NodeId,
    pub sim: SimHandle,
    pub agent: AgentHandle,
}

/// Redis, a store on it, and `n` boxes `fs1..fsN` each with its agent.
pub struct Farm {
    pub redis: RedisServer,
    pub store: Arc<dyn Store>,
    pub nodes: Vec<Node>,
}

/// Starts a farm of `n` boxes with default agent options and waits until
/// every node is live with its ESL link up.
pub async fn start_farm(n: usize) -> Farm {
    start_farm_with(n, &AgentOpts::default()).await
}

/// [`start_farm`] with custom agent options.
pub async fn start_farm_with(n: usize, opts: &AgentOpts) -> Farm {
    init_tracing();
    let redis = start_redis().await;
    let store = open_store(&redis.url()).await;
    let mut nodes = Vec::new();
    for i in 1..=n {
        let name = format!("fs{i}");
        let sim = start_sim(&name).await;
        let cfg = opts.config(&name, &sim.esl_addr().to_string());
        let agent = spawn_agent(cfg, store.clone());
        nodes.push(Node {
            id: agent.id.clone(),
            sim,
            agent,
        });
    }
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.id.clone()).collect();
    wait_for(&store, "every node live with ESL up", |f| {
        ids.iter().all(|id| esl_up(f, id))
    })
    .await;
    Farm {
        redis,
        store,
        nodes,
    }
}

/// Sum of `locus_agent_esl_events_total` over every event label, as
/// `/metrics` shows it.
pub fn events_total(metrics: &Metrics) -> u64 {
    metrics
        .encode()
        .lines()
        .filter(|l| l.starts_with("locus_agent_esl_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}
