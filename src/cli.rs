//! Command line: one `locus` binary, one subcommand per role.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use toml::Value;

use crate::config::Override;

/// Locus makes a farm of FreeSWITCH boxes behind a SIP proxy behave like one
/// switch: pickups, parks, conferences, queues and tenants meet on the box
/// that holds them.
///
/// Quick start: `locus demo` plays a scripted day on two simulated boxes.
/// Beside each real FreeSWITCH run `locus agent --node-id fs1 --redis
/// redis://10.0.0.5:6379`; see the farm with `locus inspect nodes`.
#[derive(Debug, Parser)]
#[command(name = "locus", version, about, long_about)]
pub struct Cli {
    /// TOML config file (see examples/locus.toml; LOCUS_<SECTION>__<KEY>
    /// environment variables override it, flags override both).
    #[arg(long, short = 'c', global = true, env = "LOCUS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Load and validate the configuration, print it (secrets redacted), exit.
    #[arg(long, global = true)]
    pub check_config: bool,
    /// Log format on stderr (filter with RUST_LOG, e.g. RUST_LOG=locus_agent=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

/// What to run.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the agent beside one FreeSWITCH: read its Event Socket, publish
    /// its calls, pickup groups, parks, rooms, queues and load to Redis.
    Agent(AgentArgs),
    /// Run the SIP proxy in front of the farm: phones, carriers and boxes
    /// talk SIP to it; it spreads standard calls by load and sends pickups,
    /// parks, rooms, queues and tenants to the box that holds them
    /// ([proxy] in the config; see proxy-hooks/README.md).
    Proxy(ProxyArgs),
    /// Show the farm as stored in Redis (tables, or JSON with --json).
    Inspect(InspectArgs),
    /// Drain or undrain a node: a draining node takes no new standard calls
    /// but still gets the calls bound to what it holds.
    Node(NodeArgs),
    /// Run a simulated FreeSWITCH (Event Socket, and SIP with --sip) for
    /// tests and trials.
    ///
    /// With --sip the box also answers SIP on that UDP address: OPTIONS,
    /// REGISTER and INVITE with digest auth against the directory (401 /
    /// 407, as vanilla's `auth-calls`; --no-auth-calls takes INVITEs
    /// unchallenged), INVITEs routed by the vanilla dialplan; calls to
    /// users go to --proxy, the farm's proxy (inbound legs then carry it as
    /// From host, as in a real farm).
    ///
    /// --directory FILE (TOML) replaces the vanilla users (1000-1019,
    /// password 1234, callgroup techsupport):
    ///
    ///   domain = "farm.test"        # optional; overrides --domain
    ///
    ///   [[users]]
    ///   id = "1000"
    ///   password = "1234"           # optional; default 1234
    ///   callgroup = "techsupport"   # optional
    #[command(verbatim_doc_comment)]
    Sim(SimArgs),
    /// Start two simulated boxes with their agents and `locus proxy`, play
    /// a short scripted day (calls, a ringing pickup group, a park, a
    /// conference; then phones calling through the proxy), show the farm,
    /// and exit. Uses redis-server if installed, else memory.
    Demo(DemoArgs),
}

/// `locus agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// This box's id in the farm (agent.node_id).
    #[arg(long)]
    pub node_id: Option<String>,
    /// FreeSWITCH Event Socket, HOST:PORT (agent.esl.addr).
    #[arg(long)]
    pub esl: Option<String>,
    /// Event Socket password (agent.esl.password; prefer the env
    /// LOCUS_AGENT__ESL__PASSWORD so it stays out of `ps`).
    #[arg(long)]
    pub esl_password: Option<String>,
    /// Redis URL (redis.url): redis://, rediss://, redis+sentinel://.
    #[arg(long)]
    pub redis: Option<String>,
    /// SIP URI the proxy uses for this box (agent.sip_uri).
    #[arg(long)]
    pub sip_uri: Option<String>,
    /// /metrics and /healthz listener (agent.http).
    #[arg(long)]
    pub http: Option<SocketAddr>,
}

/// `locus proxy`.
#[derive(Debug, Args)]
pub struct ProxyArgs {
    /// Redis URL (redis.url).
    #[arg(long)]
    pub redis: Option<String>,
    /// UDP listener, repeatable (replaces proxy.sip.udp), e.g. 0.0.0.0:5060.
    #[arg(long = "udp")]
    pub udp: Vec<SocketAddr>,
    /// TCP listener, repeatable (replaces proxy.sip.tcp). Without it and
    /// without proxy.sip.tcp, TCP listens on the UDP addresses only.
    #[arg(long = "tcp")]
    pub tcp: Vec<SocketAddr>,
    /// /metrics, /healthz and route hook listener (proxy.http).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// This proxy's id (proxy.core.id), unique per proxy.
    #[arg(long)]
    pub id: Option<String>,
    /// host[:port] put in Via/Record-Route/Path (proxy.core.advertise).
    #[arg(long)]
    pub advertise: Option<String>,
}

/// `locus inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Redis URL (redis.url).
    #[arg(long)]
    pub redis: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// What to show.
    #[arg(value_enum)]
    pub what: crate::inspect::What,
    /// With `registrations`: only this AOR (`user@domain`).
    pub aor: Option<String>,
    /// With `registrations`: read at most this many users' keys.
    #[arg(long, default_value_t = 10_000)]
    pub max_users: usize,
}

/// `locus node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// Redis URL (redis.url).
    #[arg(long)]
    pub redis: Option<String>,
    /// drain or undrain.
    #[arg(value_enum)]
    pub action: NodeAction,
    /// The node id.
    pub id: String,
}

/// Node actions.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NodeAction {
    /// Stop new standard calls.
    Drain,
    /// Take new calls again.
    Undrain,
}

/// `locus sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Event Socket listen address.
    #[arg(long, default_value = "127.0.0.1:8021")]
    pub esl: SocketAddr,
    /// Switch name of the simulated box.
    #[arg(long, default_value = "sim1")]
    pub node_id: String,
    /// Event Socket password.
    #[arg(long, default_value = "ClueCon")]
    pub password: String,
    /// SIP domain of the simulated users.
    #[arg(long, default_value = "127.0.0.1")]
    pub domain: String,
    /// SIP (UDP) listen address of the box, like a sofia profile's port.
    #[arg(long)]
    pub sip: Option<SocketAddr>,
    /// The farm's SIP proxy: where the box sends calls for users.
    #[arg(long)]
    pub proxy: Option<SocketAddr>,
    /// Users directory file (TOML, format above); default vanilla.
    #[arg(long)]
    pub directory: Option<PathBuf>,
    /// Take INVITEs unchallenged, as a box that trusts its proxy; by
    /// default they get a 407 digest challenge, as vanilla's internal
    /// profile (`auth-calls=true`) does.
    #[arg(long)]
    pub no_auth_calls: bool,
}

/// `locus demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Use this Redis instead of starting one (or memory://).
    #[arg(long)]
    pub redis: Option<String>,
    /// Show JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

impl Cli {
    /// Flags as config overrides (dotted paths), in precedence order.
    pub fn overrides(&self) -> Vec<Override> {
        let mut o = Vec::new();
        let mut put = |path: &str, v: &Option<String>| {
            if let Some(v) = v {
                o.push((path.to_owned(), Value::String(v.clone())));
            }
        };
        match &self.command {
            Command::Agent(a) => {
                put("agent.node_id", &a.node_id);
                put("agent.esl.addr", &a.esl);
                put("agent.esl.password", &a.esl_password);
                put("redis.url", &a.redis);
                put("agent.sip_uri", &a.sip_uri);
                put("agent.http", &a.http.map(|h| h.to_string()));
            }
            Command::Proxy(p) => {
                put("redis.url", &p.redis);
                put("proxy.http", &p.http.map(|h| h.to_string()));
                put("proxy.core.id", &p.id);
                put("proxy.core.advertise", &p.advertise);
                for (path, addrs) in [("proxy.sip.udp", &p.udp), ("proxy.sip.tcp", &p.tcp)] {
                    if !addrs.is_empty() {
                        let list = addrs.iter().map(|a| Value::String(a.to_string()));
                        o.push((path.to_owned(), Value::Array(list.collect())));
                    }
                }
            }
            Command::Inspect(i) => put("redis.url", &i.redis),
            Command::Node(n) => put("redis.url", &n.redis),
            Command::Demo(d) => put("redis.url", &d.redis),
            Command::Sim(_) => {}
        }
        o
    }
}
