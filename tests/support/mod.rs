//! Shared helpers of the root integration tests: a throwaway `redis-server`
//! per test, simulated FreeSWITCH boxes on port 0, real agents built from a
//! TOML string, and polling of the store with a deadline (never a fixed
//! sleep for readiness).

#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use locus_agent::{AgentConfig, Metrics};
use locus_schema::testing::RedisServer;
use locus_schema::{CallRecord, EslLink, FarmView, Keys, NodeId, NodeView, Store, Table};
use locus_sim::{Sim, SimConfig, SimHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The SIP domain every simulated box serves.
pub const DOMAIN: &str = "farm.test";
/// Default bound for "the store shows it": generous for a loaded 2-core box.
pub const WAIT: Duration = Duration::from_secs(15);
/// Poll interval of [`wait_for`].
const POLL: Duration = Duration::from_millis(20);
/// Store operation time limit.
pub const STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// Logs to the test's captured output (`RUST_LOG` filters; warn by default).
pub fn init_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    });
}

/// A free loopback port: bind port 0, read it, release it.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

/// Starts a `redis-server` (blocking start, so off the async workers).
pub async fn start_redis() -> RedisServer {
    tokio::task::spawn_blocking(RedisServer::start)
        .await
        .expect("redis start task")
        .expect("redis-server must be installed (CI installs it)")
}

/// Opens a store on `url` with the default prefix.
pub async fn open_store(url: &str) -> Arc<dyn Store> {
    locus_schema::store::open(url, Keys::default(), STORE_TIMEOUT)
        .await
        .expect("open store")
}

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

/// Polls `read_farm` every 20 ms until `ok` holds; panics after [`WAIT`]
/// with the last view (or error) in the message.
pub async fn wait_for(
    store: &Arc<dyn Store>,
    what: &str,
    ok: impl Fn(&FarmView) -> bool,
) -> FarmView {
    wait_for_within(store, what, WAIT, ok).await
}

/// [`wait_for`] with its own bound.
pub async fn wait_for_within(
    store: &Arc<dyn Store>,
    what: &str,
    limit: Duration,
    ok: impl Fn(&FarmView) -> bool,
) -> FarmView {
    let deadline = Instant::now() + limit;
    let mut last: String;
    loop {
        match store.read_farm().await {
            Ok(farm) if ok(&farm) => return farm,
            Ok(farm) => last = format!("{farm:#?}"),
            Err(e) => last = format!("read error: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}; last view: {last}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls a plain condition every 20 ms until it holds (panics after `limit`).
pub async fn wait_until(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + limit;
    while !ok() {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The node's view, live or not.
pub fn node<'a>(farm: &'a FarmView, id: &NodeId) -> Option<&'a NodeView> {
    farm.nodes.get(id)
}

/// True when the node is live and publishes `esl = up`.
pub fn esl_up(farm: &FarmView, id: &NodeId) -> bool {
    node(farm, id).is_some_and(|n| n.live && n.image.status.esl == EslLink::Up)
}

/// One table of one node (empty when absent).
pub fn table(farm: &FarmView, id: &NodeId, t: Table) -> BTreeMap<String, String> {
    node(farm, id)
        .and_then(|n| n.image.tables.get(&t).cloned())
        .unwrap_or_default()
}

/// The node's call records, parsed.
pub fn calls(farm: &FarmView, id: &NodeId) -> BTreeMap<String, CallRecord> {
    table(farm, id, Table::Calls)
        .into_iter()
        .map(|(k, v)| {
            let rec: CallRecord = serde_json::from_str(&v).expect("CallRecord JSON");
            (k, rec)
        })
        .collect()
}

/// `{DOMAIN}/{name}`: the field of ringing, groups, rooms and queues.
pub fn dkey(name: &str) -> String {
    format!("{DOMAIN}/{name}")
}

/// One HTTP/1.1 GET over a raw socket: (status code, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::other("http read timed out"))??;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((code, body))
}

/// The `members` key of `ext` in [`DOMAIN`].
pub fn member(ext: &str) -> (String, String) {
    (DOMAIN.to_owned(), ext.to_owned())
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

/// Waits until the agent has published everything the box did so far: the
/// box reports a new idle-CPU figure in a HEARTBEAT, and since the agent
/// applies events in order, once Redis shows it every earlier event is
/// there too. Returns that view.
pub async fn settle(store: &Arc<dyn Store>, sim: &SimHandle, id: &NodeId) -> FarmView {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 160;
    let cpu = 50.0 + f64::from(n) * 0.25;
    sim.set_load(locus_sim::Load {
        idle_cpu: cpu,
        ..locus_sim::Load::default()
    });
    sim.heartbeat().await;
    wait_for(store, "the agent caught up (heartbeat)", |f| {
        node(f, id).is_some_and(|n| (n.image.status.idle_cpu - cpu).abs() < 0.001)
    })
    .await
}
