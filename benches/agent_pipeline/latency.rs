//! Latency: the fake box emits the mix at a fixed rate, stamping each
//! event's `Event-Date-Timestamp` as it leaves; the agent reports each
//! event's age when Redis acknowledged its change (the
//! `locus_agent_publish_latency_seconds` samples). Cross-check from
//! outside: for one new call at a time, a Redis client polls until the call
//! is visible and times it from the write of its CHANNEL_CREATE.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use locus_agent::Metrics;
use locus_esl::{Event, Frame};
use locus_schema::testing::RedisServer;

use crate::fake_fs::{FakeFs, Feed, Probes, Stamped};
use crate::harness::{self, calls_key, metric};
use crate::mix::{self, Template};
use crate::stats::{Summary, median, ms, rate};

/// How long the probe waits for one call to show.
const PROBE_LIMIT: Duration = Duration::from_secs(2);
const STAMP: &[u8] = b"\"Event-Date-Timestamp\":\"";

/// Paced runs at each rate; prints each run and the medians.
pub fn section(
    templates: &[Template],
    runs: usize,
    secs: f64,
    rates: &[f64],
) -> anyhow::Result<()> {
    let per_copy = templates.iter().map(|t| t.events.len()).sum::<usize>() / templates.len();
    let span = templates.iter().map(Template::span).sum::<f64>() / templates.len() as f64;
    for &r in rates {
        let n = (r * secs) as usize;
        let copies = n.div_ceil(per_copy) + 1;
        // Calls start at r / per_copy a second and last `span`.
        let concurrency = ((r / per_copy as f64) * span).max(1.0) as usize;
        let mut events = mix::overlapped(templates, copies, concurrency);
        events.truncate(n);
        let (sentinel, uuid) = mix::sentinel(templates, copies)?;
        events.push(sentinel);
        let frames = stamped(&events)?;
        println!(
            "\n## latency at {r:.0} events/s for {secs} s: {} events, ~{concurrency} concurrent calls",
            frames.len()
        );
        let (mut p50, mut p99, mut p999, mut x50, mut x99) =
            (vec![], vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let run = one(frames.clone(), r, &uuid, secs)?;
            println!(
                "sent {:.0} ev/s; agent busy {:.0}%; dropped {}; load {}\n  agent (event age at Redis ack): {}\n  external probe (CHANNEL_CREATE written -> call visible): {} misses={}",
                run.sent_rate,
                run.busy * 100.0,
                run.dropped,
                run.load,
                run.internal,
                run.external,
                run.misses
            );
            p50.push(run.internal.p50 as f64);
            p99.push(run.internal.p99 as f64);
            p999.push(run.internal.p999 as f64);
            x50.push(run.external.p50 as f64);
            x99.push(run.external.p99 as f64);
        }
        println!(
            "MEDIAN latency at {r:.0}/s: agent p50 {} p99 {} p99.9 {}; external p50 {} p99 {} (target p99 < 5ms at 1k/s)",
            ms(median(p50) as u64),
            ms(median(p99) as u64),
            ms(median(p999) as u64),
            ms(median(x50) as u64),
            ms(median(x99) as u64),
        );
    }
    Ok(())
}

/// Frames with the offset of their time stamp; inbound CHANNEL_CREATEs
/// (a new call under that uuid) are probes.
fn stamped(events: &[Event]) -> anyhow::Result<Vec<Stamped>> {
    events
        .iter()
        .map(|ev| {
            let bytes = Frame::event_json(ev).to_bytes()?.to_vec();
            let stamp_at = bytes
                .windows(STAMP.len())
                .position(|w| w == STAMP)
                .map(|p| p + STAMP.len())
                .filter(|&at| {
                    bytes
                        .get(at..at + 16)
                        .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
                        && bytes.get(at + 16) == Some(&b'"')
                });
            let probe = (ev.name() == Some("CHANNEL_CREATE")
                && ev.get("Call-Direction") == Some("inbound"))
            .then(|| ev.unique_id().map(str::to_owned))
            .flatten();
            Ok(Stamped {
                bytes,
                stamp_at,
                probe,
            })
        })
        .collect()
}

struct Run {
    sent_rate: f64,
    busy: f64,
    dropped: f64,
    load: String,
    internal: Summary,
    external: Summary,
    misses: usize,
}

fn one(frames: Vec<Stamped>, r: f64, sentinel: &str, secs: f64) -> anyhow::Result<Run> {
    let n = frames.len();
    let redis = RedisServer::start()?;
    let url = redis.url();
    let metrics = Metrics::with_latency_samples(n + 1024);
    let (tx, rx) = mpsc::channel::<(String, Instant)>();
    let idle = Arc::new(AtomicBool::new(true));
    let prober = {
        let (url, idle) = (url.clone(), idle.clone());
        let key = calls_key()?;
        std::thread::spawn(move || -> anyhow::Result<(Vec<u64>, usize)> {
            let mut con = harness::redis_conn(&url)?;
            let (mut us, mut misses) = (Vec::new(), 0);
            // Ends when the feed drops its sender.
            while let Ok((uuid, sent)) = rx.recv() {
                match harness::wait_field(&mut con, &key, &uuid, PROBE_LIMIT, Duration::ZERO) {
                    Ok(seen) => us.push(seen.duration_since(sent).as_micros() as u64),
                    Err(_) => misses += 1,
                }
                idle.store(true, Ordering::Release);
            }
            Ok((us, misses))
        })
    };
    let fs = FakeFs::start(Feed::Paced {
        frames,
        rate: r,
        probes: Some(Probes { tx, idle }),
    })?;
    let agent = harness::spawn_agent(fs.addr, &url, metrics.clone(), 0)?;
    fs.wait_started(Duration::from_secs(30))?;
    let cpu0 = agent.cpu()?;
    let sent = fs.wait_sent(Duration::from_secs_f64(secs * 3.0 + 30.0))?;
    let mut con = harness::redis_conn(&url)?;
    harness::wait_field(
        &mut con,
        &calls_key()?,
        sentinel,
        Duration::from_secs(60),
        Duration::from_millis(1),
    )?;
    let cpu1 = agent.cpu()?;
    let text = agent.metrics.encode();
    let internal = Summary::of(agent.metrics.take_latency_samples());
    agent.stop()?;
    let (external, misses) = prober
        .join()
        .map_err(|_| anyhow::anyhow!("prober panicked"))?
        .context("prober")?;
    let window = sent.last.duration_since(sent.first);
    Ok(Run {
        sent_rate: rate(sent.frames, window),
        busy: (cpu1 - cpu0).as_secs_f64() / window.as_secs_f64(),
        dropped: metric(&text, "locus_agent_esl_events_dropped_total"),
        load: harness::load(),
        internal,
        external: Summary::of(external),
        misses,
    })
}
