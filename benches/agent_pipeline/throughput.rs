//! Throughput: events per second through the ESL codec alone, codec +
//! call model, and the whole agent (socket -> codec -> model -> publisher
//! -> Redis) on one core.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use locus_agent::Metrics;
use locus_agent::model::{Model, ModelConfig};
use locus_esl::{EslCodec, Message};
use locus_schema::NodeStatus;
use locus_schema::testing::RedisServer;
use tokio_util::codec::Decoder;

use crate::fake_fs::{FakeFs, Feed, Window};
use crate::harness::{self, calls_key, metric};
use crate::mix::Encoded;
use crate::stats::rate;

/// Bytes handed to the decoder at a time, like socket reads.
const READ: usize = 64 * 1024;
/// Longest an end-to-end run may take.
const RUN_LIMIT: Duration = Duration::from_secs(120);

/// How an end-to-end run feeds and runs the agent.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// Events in flight at most (closed loop), or a flood (`None`).
    pub window: Option<usize>,
    /// 0: current-thread runtime (one core); n: multi-thread, n workers.
    pub workers: usize,
}

/// Decodes every frame of `enc` into events, optionally applying them to a
/// model; returns events/s.
pub fn in_process(enc: &Encoded, with_model: bool) -> anyhow::Result<f64> {
    let mut codec = EslCodec::default();
    let mut model = Model::new(ModelConfig::default(), NodeStatus::default());
    let mut buf = BytesMut::with_capacity(2 * READ);
    let mut events = 0usize;
    let mut ops = 0usize;
    let start = Instant::now();
    for chunk in enc.bytes.chunks(READ) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buf)? {
            if let Message::Event(ev) = Message::try_from(frame)? {
                events += 1;
                if with_model {
                    ops += model.apply(&ev, 1).change.ops.len();
                }
            }
        }
    }
    let took = start.elapsed();
    std::hint::black_box(ops);
    anyhow::ensure!(
        events == enc.ends.len(),
        "decoded {events} of {}",
        enc.ends.len()
    );
    Ok(rate(events, took))
}

/// One end-to-end run.
#[derive(Clone, Debug)]
pub struct Run {
    /// Events per second, first byte sent to last change visible in Redis.
    pub rate: f64,
    /// Seconds of that window.
    pub secs: f64,
    /// Share of the window the agent's thread was on a CPU (one-core
    /// runs only).
    pub agent_busy: Option<f64>,
    /// Events the agent counted.
    pub events: f64,
    /// Events it dropped (queue overflow).
    pub dropped: f64,
    /// Resyncs (1 = only the initial snapshot).
    pub resyncs: f64,
    /// Atomic store writes.
    pub writes: f64,
    /// Load average at the end.
    pub load: String,
}

/// Serves `enc` (whose last frame creates the call `sentinel`) to the real
/// agent and times until Redis shows the sentinel. With `window`, at most
/// that many events are in flight (closed loop: the agent's capacity);
/// without, the feed is a flood (open loop).
pub fn end_to_end(enc: &Arc<Encoded>, sentinel: &str, setup: Setup) -> anyhow::Result<Run> {
    let redis = RedisServer::start()?;
    let mut con = harness::redis_conn(&redis.url())?;
    let key = calls_key()?;
    let metrics = Metrics::new();
    let window = setup.window.map(|max| {
        let m = metrics.clone();
        Window {
            max,
            done: Box::new(move || metric(&m.encode(), "locus_agent_esl_events_total") as usize),
        }
    });
    let fs = FakeFs::start(Feed::Burst(enc.clone(), window))?;
    let agent = harness::spawn_agent(fs.addr, &redis.url(), metrics, setup.workers)?;
    let first = fs.wait_started(Duration::from_secs(30))?;
    let cpu0 = agent.cpu()?;
    let seen = harness::wait_field(
        &mut con,
        &key,
        sentinel,
        // A flood that made the agent resync never shows the sentinel
        // (the fake box lists no channels): do not wait long for it.
        if setup.window.is_some() {
            RUN_LIMIT
        } else {
            RUN_LIMIT / 4
        },
        Duration::from_micros(500),
    )
    .map_err(|e| {
        let text = agent.metrics.encode();
        e.context(format!(
            "events {} dropped {} resyncs {}",
            metric(&text, "locus_agent_esl_events_total"),
            metric(&text, "locus_agent_esl_events_dropped_total"),
            metric(&text, "locus_agent_resyncs_total")
        ))
    })?;
    let cpu1 = agent.cpu()?;
    let sent = fs.wait_sent(Duration::from_secs(5))?;
    let window = seen.duration_since(first);
    let text = agent.metrics.encode();
    agent.stop()?;
    Ok(Run {
        rate: rate(sent.frames, window),
        secs: window.as_secs_f64(),
        agent_busy: (setup.workers == 0)
            .then(|| (cpu1 - cpu0).as_secs_f64() / window.as_secs_f64()),
        events: metric(&text, "locus_agent_esl_events_total"),
        dropped: metric(&text, "locus_agent_esl_events_dropped_total"),
        resyncs: metric(&text, "locus_agent_resyncs_total"),
        writes: metric(&text, "locus_agent_store_writes_total"),
        load: harness::load(),
    })
}
