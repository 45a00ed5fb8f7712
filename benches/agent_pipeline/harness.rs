//! Running the real agent for a measurement: in this process on a
//! single-threaded tokio runtime (one core, as the throughput target
//! says), against a throwaway `redis-server`; plus the probes around it
//! (Redis polling, per-thread CPU time, machine load, metric scraping).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use locus_agent::Metrics;
use locus_schema::{Keys, NodeId, Table};
use tokio_util::sync::CancellationToken;

/// Node id the benchmarks publish as.
pub const NODE: &str = "bench1";
/// Key prefix (the default of `examples/locus.toml`).
pub const PREFIX: &str = "locus:";

/// The `calls` hash of the benchmark node.
pub fn calls_key() -> anyhow::Result<String> {
    Ok(Keys::new(PREFIX).table(&NodeId::new(NODE)?, Table::Calls))
}

/// The agent, running on its own thread.
pub struct InProcessAgent {
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Kernel id of its thread (for `/proc/self/task/<tid>`).
    pub tid: u32,
    token: CancellationToken,
    done: mpsc::Receiver<anyhow::Result<()>>,
}

/// Starts `locus_agent::run_with_metrics` on a current-thread runtime
/// (`workers` 0: one core), or on a multi-thread one with `workers` threads
/// (as the `locus` binary runs it; `tid` is then the launching thread).
pub fn spawn_agent(
    esl: SocketAddr,
    redis_url: &str,
    metrics: Arc<Metrics>,
    workers: usize,
) -> anyhow::Result<InProcessAgent> {
    let mut cfg = locus::config::load(None, Vec::<(String, String)>::new(), Vec::new())?.agent;
    cfg.node_id = NodeId::new(NODE)?;
    cfg.esl.addr = esl.to_string();
    cfg.http = None;
    let token = CancellationToken::new();
    let (tid_tx, tid_rx) = mpsc::channel();
    let (done_tx, done) = mpsc::channel();
    let (url, t, m) = (redis_url.to_owned(), token.clone(), metrics.clone());
    std::thread::Builder::new()
        .name("agent".into())
        .spawn(move || {
            let _ = tid_tx.send(thread_id());
            let mut rt = match workers {
                0 => tokio::runtime::Builder::new_current_thread(),
                n => {
                    let mut b = tokio::runtime::Builder::new_multi_thread();
                    b.worker_threads(n);
                    b
                }
            };
            let r = rt
                .enable_all()
                .build()
                .context("tokio runtime")
                .and_then(|rt| {
                    rt.block_on(async move {
                        let keys = Keys::new(PREFIX);
                        let store =
                            locus_schema::store::open(&url, keys, Duration::from_secs(2)).await?;
                        locus_agent::run_with_metrics(cfg, store, m, t).await
                    })
                });
            let _ = done_tx.send(r);
        })?;
    let tid = tid_rx.recv_timeout(Duration::from_secs(5))??;
    Ok(InProcessAgent {
        metrics,
        tid,
        token,
        done,
    })
}

impl InProcessAgent {
    /// CPU time its thread has used so far.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        thread_cpu(self.tid)
    }

    /// Stops it and waits (bounded) for its end.
    pub fn stop(self) -> anyhow::Result<()> {
        self.token.cancel();
        self.done.recv_timeout(Duration::from_secs(10))?
    }
}

/// This thread's kernel id, from `/proc/thread-self` (`<pid>/task/<tid>`).
fn thread_id() -> anyhow::Result<u32> {
    let link = std::fs::read_link("/proc/thread-self")?;
    let tid = link
        .file_name()
        .and_then(|s| s.to_str())
        .context("odd /proc/thread-self")?;
    Ok(tid.parse()?)
}

/// Time a thread of this process has spent on a CPU (`schedstat`, ns).
pub fn thread_cpu(tid: u32) -> anyhow::Result<Duration> {
    let s = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))?;
    let ns: u64 = s
        .split_whitespace()
        .next()
        .context("empty schedstat")?
        .parse()?;
    Ok(Duration::from_nanos(ns))
}

/// A synchronous Redis connection for probing what readers see.
pub fn redis_conn(url: &str) -> anyhow::Result<redis::Connection> {
    Ok(redis::Client::open(url)?.get_connection()?)
}

/// Polls until `field` exists in `key`; returns when it was first seen.
pub fn wait_field(
    con: &mut redis::Connection,
    key: &str,
    field: &str,
    timeout: Duration,
    every: Duration,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + timeout;
    loop {
        let seen: bool = redis::cmd("HEXISTS").arg(key).arg(field).query(con)?;
        if seen {
            return Ok(Instant::now());
        }
        if Instant::now() > deadline {
            bail!("{key} {field} not visible within {timeout:?}");
        }
        std::thread::sleep(every);
    }
}

/// 1-minute load average, as `uptime` shows it.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Sum of every series of `name` in a text exposition.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
