//! Agent benchmarks (issue item 11), figures for `docs/performance.md`.
//!
//! `cargo bench --bench agent_pipeline [-- SECTION... [--runs N] ...]`
//! with sections `throughput` (codec, codec + model, and the whole agent on
//! one core against Redis), `latency` (paced 1k and 10k events/s: event
//! age when Redis acknowledged it, and an external probe), `rss` (the
//! `locus` binary holding 10,000 live calls). No section = all. Every
//! measurement runs `--runs` times (default 3) and reports the median.
//! Needs `redis-server` and the captures in `../shared/fixtures/esl`.

mod fake_fs;
mod harness;
mod latency;
mod mix;
mod rss;
mod stats;
mod throughput;

use std::sync::Arc;

use anyhow::Context;
use locus_esl::capture;

use crate::stats::median;
use crate::throughput::Setup;

/// The system allocator, counting live heap bytes (the model's own
/// footprint, apart from what the C allocator keeps).
#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Heap bytes allocated and not yet freed in this process.
pub fn heap_bytes() -> usize {
    ALLOC.allocated()
}

/// Options from the command line.
struct Opts {
    sections: Vec<String>,
    runs: usize,
    events: usize,
    concurrency: usize,
    window: usize,
    e2e_only: bool,
    latency_secs: f64,
    rates: Vec<f64>,
    calls: usize,
    calls_per_sec: f64,
}

fn opts() -> anyhow::Result<Opts> {
    let mut o = Opts {
        sections: Vec::new(),
        runs: 3,
        events: 100_000,
        concurrency: 1_000,
        window: 8_192,
        e2e_only: false,
        latency_secs: 10.0,
        rates: vec![1_000.0, 10_000.0],
        calls: 10_000,
        calls_per_sec: 250.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().with_context(|| format!("{a} needs a value"));
        match a.as_str() {
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "--runs" => o.runs = val()?.parse()?,
            "--events" => o.events = val()?.parse()?,
            "--concurrency" => o.concurrency = val()?.parse()?,
            "--window" => o.window = val()?.parse()?,
            "--e2e-only" => o.e2e_only = true,
            "--latency-secs" => o.latency_secs = val()?.parse()?,
            "--rates" => {
                o.rates = val()?
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?
            }
            "--calls" => o.calls = val()?.parse()?,
            "--calls-per-sec" => o.calls_per_sec = val()?.parse()?,
            s if !s.starts_with('-') => o.sections.push(s.to_owned()),
            other => anyhow::bail!("unknown option {other}"),
        }
    }
    if o.sections.is_empty() {
        o.sections = vec!["throughput".into(), "latency".into(), "rss".into()];
    }
    Ok(o)
}

fn main() -> anyhow::Result<()> {
    let o = opts()?;
    anyhow::ensure!(
        locus_schema::testing::redis_available(),
        "redis-server not found (set LOCUS_REDIS_SERVER)"
    );
    let dir = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let templates = mix::load_templates(&dir)?;
    for t in &templates {
        println!(
            "template {}: {} subscribed events over {:.1} s",
            t.name,
            t.events.len(),
            t.span()
        );
    }
    for s in &o.sections {
        match s.as_str() {
            "throughput" => throughput_section(&o, &templates)?,
            "latency" => latency::section(&templates, o.runs, o.latency_secs, &o.rates)?,
            "rss" => rss::section(&templates, o.runs, o.calls, o.calls_per_sec)?,
            other => anyhow::bail!("unknown section {other}"),
        }
    }
    Ok(())
}

fn throughput_section(o: &Opts, templates: &[mix::Template]) -> anyhow::Result<()> {
    let per_copy = templates.iter().map(|t| t.events.len()).sum::<usize>() / templates.len();
    let copies = o.events.div_ceil(per_copy);
    let mut events = mix::overlapped(templates, copies, o.concurrency);
    let (sentinel, uuid) = mix::sentinel(templates, copies)?;
    events.push(sentinel);
    let enc = Arc::new(mix::encode(&events)?);
    drop(events);
    println!(
        "\n## throughput: {} events ({} calls, ~{} concurrent), {:.0} MB, {:.0} B/event",
        enc.ends.len(),
        copies,
        o.concurrency,
        enc.bytes.len() as f64 / 1e6,
        enc.bytes.len() as f64 / enc.ends.len() as f64
    );
    let mut codec = Vec::new();
    let mut model = Vec::new();
    for _ in 0..o.runs {
        if o.e2e_only {
            break;
        }
        codec.push(throughput::in_process(&enc, false)?);
        model.push(throughput::in_process(&enc, true)?);
        println!(
            "codec only: {:.0} ev/s; codec + model: {:.0} ev/s (load {})",
            codec.last().copied().unwrap_or(0.0),
            model.last().copied().unwrap_or(0.0),
            harness::load()
        );
    }
    let closed = Setup {
        window: Some(o.window),
        workers: 0,
    };
    let mut e2e = Vec::new();
    for _ in 0..o.runs {
        let r = throughput::end_to_end(&enc, &uuid, closed)?;
        report("end to end, one core, closed loop", &r);
        e2e.push(r.rate);
    }
    println!(
        "MEDIAN throughput: codec {:.0} ev/s, codec+model {:.0} ev/s, end-to-end {:.0} ev/s (target >= 20000)",
        median(codec),
        median(model),
        median(e2e)
    );
    if o.e2e_only {
        return Ok(());
    }
    // A flood, once each way: what happens when FreeSWITCH sends faster
    // than the agent goes.
    for (what, workers) in [("one core", 0), ("2 worker threads", 2)] {
        let setup = Setup {
            window: None,
            workers,
        };
        match throughput::end_to_end(&enc, &uuid, setup) {
            Ok(r) => report(&format!("end to end, {what}, open loop"), &r),
            Err(e) => println!("end to end, {what}, open loop: did not finish: {e:#}"),
        }
    }
    Ok(())
}

fn report(what: &str, r: &throughput::Run) {
    let busy = r
        .agent_busy
        .map_or("-".into(), |b| format!("{:.0}%", b * 100.0));
    println!(
        "{what}: {:.0} ev/s over {:.2} s; agent thread busy {busy}; events {} dropped {} resyncs {} writes {} ({:.0} events/write); load {}",
        r.rate,
        r.secs,
        r.events,
        r.dropped,
        r.resyncs,
        r.writes,
        r.events / r.writes.max(1.0),
        r.load
    );
}
