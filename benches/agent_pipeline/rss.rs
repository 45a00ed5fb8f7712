//! Memory: the `locus agent` binary, a process of its own, is fed calls
//! that stay up (half answered and bridged, half still ringing: copies of
//! the basic call of capture 02 cut before hangup or before answer) until
//! Redis shows them all; its VmRSS / VmHWM are read from /proc before and
//! after.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::BytesMut;
use locus_agent::model::{Model, ModelConfig};
use locus_agent::publisher::apply_to_mirror;
use locus_esl::{Event, Frame};
use locus_schema::testing::RedisServer;
use locus_schema::{NodeImage, NodeStatus};

use crate::fake_fs::{FakeFs, Feed};
use crate::harness::{self, NODE, calls_key, metric};
use crate::mix::Template;
use crate::stats::median;

/// Longest the feed of all calls may take.
const FEED_LIMIT: Duration = Duration::from_secs(600);

/// Runs `runs` times with `calls` live calls set up at `per_sec` calls a
/// second (and once as fast as possible); prints each run and medians.
pub fn section(
    templates: &[Template],
    runs: usize,
    calls: usize,
    per_sec: f64,
) -> anyhow::Result<()> {
    let basic = &templates[0];
    let answered = cut(basic, ending);
    let ringing = cut(basic, |ev| {
        ending(ev) || ev.name() == Some("CHANNEL_ANSWER")
    });
    println!(
        "\n## rss: {calls} live calls (answered: {} events each, ringing: {} events each)",
        answered.len(),
        ringing.len()
    );
    let (heap, payload) = model_only(basic, &answered, &ringing, calls)?;
    println!(
        "in process, model + publisher mirror alone: {:.1} MB live heap; published fields {:.1} MB",
        heap as f64 / 1048576.0,
        payload as f64 / 1e6
    );
    let (mut before, mut after, mut hwm) = (vec![], vec![], vec![]);
    for i in 0..=runs {
        // The last run: the same calls as fast as the socket takes them.
        let rate = (i < runs).then_some(per_sec);
        let r = one(basic, &answered, &ringing, calls, rate)?;
        if rate.is_none() {
            println!(
                "unpaced: VmRSS {:.1} MB (VmHWM {:.1} MB) with {} calls; fed in {:.1} s; dropped {} resyncs {}; load {}",
                r.after_kb as f64 / 1024.0,
                r.hwm_kb as f64 / 1024.0,
                r.calls,
                r.feed_secs,
                r.dropped,
                r.resyncs,
                r.load
            );
            continue;
        }
        println!(
            "VmRSS idle {:.1} MB -> {:.1} MB with {} calls / {} channels (VmHWM {:.1} MB); fed in {:.1} s; dropped {} resyncs {}; load {}",
            r.before_kb as f64 / 1024.0,
            r.after_kb as f64 / 1024.0,
            r.calls,
            r.channels,
            r.hwm_kb as f64 / 1024.0,
            r.feed_secs,
            r.dropped,
            r.resyncs,
            r.load
        );
        before.push(r.before_kb as f64 / 1024.0);
        after.push(r.after_kb as f64 / 1024.0);
        hwm.push(r.hwm_kb as f64 / 1024.0);
    }
    println!(
        "MEDIAN rss: idle {:.1} MB, with {calls} calls {:.1} MB, peak {:.1} MB (target < 50 MB)",
        median(before),
        median(after),
        median(hwm)
    );
    Ok(())
}

/// The first events of a flow, up to (not including) the first `stop`.
fn cut(t: &Template, stop: impl Fn(&Event) -> bool) -> Vec<Event> {
    t.events
        .iter()
        .map(|(_, ev)| ev)
        .take_while(|ev| !stop(ev))
        .cloned()
        .collect()
}

/// The call starts to end (hangup, unbridge, destroy, unregister).
fn ending(ev: &Event) -> bool {
    matches!(
        ev.name(),
        Some("CHANNEL_UNBRIDGE" | "CHANNEL_HANGUP_COMPLETE" | "CHANNEL_DESTROY")
    ) || ev.get("Channel-Call-State") == Some("HANGUP")
        || ev.get("Answer-State") == Some("hangup")
        || ev.subclass() == Some("sofia::unregister")
}

struct Run {
    before_kb: u64,
    after_kb: u64,
    hwm_kb: u64,
    calls: f64,
    channels: f64,
    dropped: f64,
    resyncs: f64,
    feed_secs: f64,
    load: String,
}

fn one(
    tpl: &Template,
    answered: &[Event],
    ringing: &[Event],
    calls: usize,
    per_sec: Option<f64>,
) -> anyhow::Result<Run> {
    let redis = RedisServer::start()?;
    // Copies are made on the fly: 10,000 calls are ~1.5 GB of frames.
    let (tpl, a, r) = (tpl.clone(), answered.to_vec(), ringing.to_vec());
    let chunks = (0..calls).map(move |k| {
        let flow = if k % 2 == 0 { &a } else { &r };
        let mut buf = BytesMut::new();
        for ev in flow {
            let ev = tpl.rename(ev, k);
            // Encoding a well-formed event cannot fail.
            let _ = Frame::event_json(&ev).write_to(&mut buf);
        }
        buf.to_vec()
    });
    let fs = FakeFs::start(Feed::Stream {
        chunks: Box::new(chunks),
        per_sec,
    })?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_locus"))
        .args([
            "agent",
            "--node-id",
            NODE,
            "--sip-uri",
            "sip:127.0.0.1:5060",
        ])
        .args(["--esl", &fs.addr.to_string(), "--redis", &redis.url()])
        .args(["--http", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the locus binary")?;
    let result = measure(&mut child, &fs, &redis, calls);
    let _ = child.kill();
    let _ = child.wait();
    result
}

fn measure(
    child: &mut Child,
    fs: &FakeFs,
    redis: &RedisServer,
    calls: usize,
) -> anyhow::Result<Run> {
    let pid = child.id();
    let started = fs.wait_started(Duration::from_secs(30))?;
    let before_kb = status_kb(pid, "VmRSS")?;
    let mut con = harness::redis_conn(&redis.url())?;
    let key = calls_key()?;
    let deadline = Instant::now() + FEED_LIMIT;
    loop {
        let n: usize = redis::cmd("HLEN").arg(&key).query(&mut con)?;
        if n >= calls {
            break;
        }
        if Instant::now() > deadline || child.try_wait()?.is_some() {
            bail!("only {n} of {calls} calls reached Redis");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = fs.wait_sent(Duration::from_secs(30))?;
    // Its one TCP listener: /metrics on the port 0 it was given.
    let http = locus_schema::testing::ports::listening(pid)
        .into_iter()
        .find(|(proto, _)| *proto == "tcp")
        .map(|(_, a)| a.port())
        .context("the agent listens on no TCP port")?;
    let text = http_get(http, "/metrics")?;
    Ok(Run {
        before_kb,
        after_kb: status_kb(pid, "VmRSS")?,
        hwm_kb: status_kb(pid, "VmHWM")?,
        calls: metric(&text, "locus_agent_calls"),
        channels: metric(&text, "locus_agent_channels"),
        dropped: metric(&text, "locus_agent_esl_events_dropped_total"),
        resyncs: metric(&text, "locus_agent_resyncs_total"),
        feed_secs: sent.last.duration_since(started).as_secs_f64(),
        load: harness::load(),
    })
}

/// The same calls through a model and a publisher mirror in this process:
/// (live heap growth in bytes, bytes of the published fields). RSS would
/// not tell: this process reuses the heap of earlier sections.
fn model_only(
    tpl: &Template,
    answered: &[Event],
    ringing: &[Event],
    calls: usize,
) -> anyhow::Result<(usize, usize)> {
    let heap = crate::heap_bytes();
    let mut model = Model::new(ModelConfig::default(), NodeStatus::default());
    for k in 0..calls {
        let flow = if k % 2 == 0 { answered } else { ringing };
        for ev in flow {
            model.apply(&tpl.rename(ev, k), 1);
        }
    }
    anyhow::ensure!(model.call_count() == calls, "{} calls", model.call_count());
    let model_heap = crate::heap_bytes().saturating_sub(heap);
    // What the publisher mirrors: the image, as a resync publishes it.
    let mut mirror = NodeImage::default();
    apply_to_mirror(
        &mut mirror,
        &locus_schema::NodeChange {
            ops: model
                .image()
                .tables
                .into_iter()
                .flat_map(|(table, t)| {
                    t.into_iter().map(move |(field, v)| locus_schema::HashOp {
                        table,
                        field,
                        value: Some(v),
                    })
                })
                .collect(),
            status: None,
        },
    );
    let heap = crate::heap_bytes().saturating_sub(heap);
    for (t, fields) in &mirror.tables {
        let bytes: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
        println!(
            "  published {}: {} fields, {:.0} B each",
            t.as_str(),
            fields.len(),
            bytes as f64 / fields.len().max(1) as f64
        );
    }
    println!(
        "  live heap: model {:.1} MB, publisher mirror {:.1} MB",
        model_heap as f64 / 1048576.0,
        (heap - model_heap) as f64 / 1048576.0
    );
    let payload = mirror
        .tables
        .values()
        .flat_map(|t| t.iter())
        .map(|(k, v)| k.len() + v.len())
        .sum();
    drop((model, mirror));
    Ok((heap, payload))
}

/// A `kB` field of `/proc/<pid>/status`.
fn status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = s
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// One HTTP/1.0 GET on loopback; the body.
fn http_get(port: u16, path: &str) -> anyhow::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or(out))
}
