//! A fake FreeSWITCH Event Socket for the benchmarks: one connection,
//! the real handshake (`auth/request`, `+OK accepted`, `+OK event listener
//! enabled json`), empty answers to the agent's snapshot (`show channels as
//! json` -> no rows, other listings `-ERR no reply`), then a feed of event
//! frames. Plain threads and blocking sockets, so that its cost stays off
//! the agent's runtime.
//!
//! The feed starts once the agent has read its snapshot (its last command
//! is `api status`, see `locus_agent::resync`), or after [`START_AFTER`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use locus_esl::server::BYE_NOTICE;
use locus_esl::{Command, Frame, ServerCodec};
use tokio_util::codec::Decoder;

use crate::mix::Encoded;

/// Feed anyway when the snapshot's last command never comes.
pub const START_AFTER: Duration = Duration::from_secs(10);
/// Largest write of a burst (frame aligned).
const CHUNK: usize = 256 * 1024;

/// One frame of a paced feed.
#[derive(Clone)]
pub struct Stamped {
    /// The frame in wire form.
    pub bytes: Vec<u8>,
    /// Offset of the 16 digits of `Event-Date-Timestamp`, rewritten with
    /// the time the frame is written.
    pub stamp_at: Option<usize>,
    /// Uuid of a call this frame creates, for the external probe.
    pub probe: Option<String>,
}

/// Where paced frames that create a call are announced: (uuid, written at).
/// Only while `idle` is set, so the prober times one call at a time.
pub struct Probes {
    /// The prober's inbox.
    pub tx: Sender<(String, Instant)>,
    /// Set by the prober when it waits for the next probe.
    pub idle: Arc<AtomicBool>,
}

/// Flow control of a burst: at most `max` frames written but not yet
/// `done` (as the agent counts them). Without it a one-core agent fed
/// faster than it can go drops events and resyncs (see docs/performance.md).
pub struct Window {
    /// Frames allowed in flight.
    pub max: usize,
    /// Frames the consumer has taken so far.
    pub done: Box<dyn Fn() -> usize + Send>,
}

/// What the fake server sends after the snapshot.
pub enum Feed {
    /// Pre-encoded frames, as fast as the socket (and the window) takes them.
    Burst(Arc<Encoded>, Option<Window>),
    /// Frames at `rate` per second, each stamped when written.
    Paced {
        /// The frames, in order.
        frames: Vec<Stamped>,
        /// Frames per second.
        rate: f64,
        /// Probe announcements.
        probes: Option<Probes>,
    },
    /// Chunks made on the fly (too many to hold at once), at most
    /// `per_sec` a second (or as fast as the socket takes them).
    Stream {
        /// The chunks.
        chunks: Box<dyn Iterator<Item = Vec<u8>> + Send>,
        /// Chunks per second at most.
        per_sec: Option<f64>,
    },
}

/// What the feed did.
#[derive(Clone, Copy, Debug)]
pub struct Sent {
    /// Just before the first byte.
    pub first: Instant,
    /// Just after the last byte.
    pub last: Instant,
    /// Frames written.
    pub frames: usize,
}

/// A running fake server.
pub struct FakeFs {
    /// Where the agent connects.
    pub addr: SocketAddr,
    started: Receiver<Instant>,
    sent: Receiver<io::Result<Sent>>,
}

impl FakeFs {
    /// Binds 127.0.0.1:0 and serves the first connection with `feed`.
    pub fn start(feed: Feed) -> io::Result<FakeFs> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let (started_tx, started) = mpsc::channel();
        let (sent_tx, sent) = mpsc::channel();
        std::thread::Builder::new()
            .name("fake-fs".into())
            .spawn(move || {
                let r = listener
                    .accept()
                    .and_then(|(s, _)| serve(s, feed, started_tx, sent_tx.clone()));
                if let Err(e) = r {
                    let _ = sent_tx.send(Err(e));
                }
            })?;
        Ok(FakeFs {
            addr,
            started,
            sent,
        })
    }

    /// When the feed began.
    pub fn wait_started(&self, timeout: Duration) -> anyhow::Result<Instant> {
        Ok(self.started.recv_timeout(timeout)?)
    }

    /// Waits until the whole feed is written.
    pub fn wait_sent(&self, timeout: Duration) -> anyhow::Result<Sent> {
        Ok(self.sent.recv_timeout(timeout)??)
    }
}

type Shared = Arc<Mutex<TcpStream>>;

fn write(w: &Shared, bytes: &[u8]) -> io::Result<()> {
    w.lock().unwrap_or_else(|e| e.into_inner()).write_all(bytes)
}

fn send(w: &Shared, frame: &Frame) -> io::Result<()> {
    let bytes = frame.to_bytes().map_err(io::Error::other)?;
    write(w, &bytes)
}

/// Handshake and commands on this thread; the feed on another.
fn serve(
    stream: TcpStream,
    feed: Feed,
    started: Sender<Instant>,
    sent: Sender<io::Result<Sent>>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut rd = stream.try_clone()?;
    let w: Shared = Arc::new(Mutex::new(stream));
    send(&w, &Frame::auth_request())?;
    let (go_tx, go) = mpsc::channel::<()>();
    let fw = w.clone();
    std::thread::Builder::new()
        .name("fake-fs-feed".into())
        .spawn(move || {
            // No snapshot in time: feed anyway (the agent resyncs later).
            let _ = go.recv_timeout(START_AFTER);
            let _ = sent.send(run_feed(&fw, feed, &started));
        })?;
    let mut go_tx = Some(go_tx);
    let mut codec = ServerCodec::default();
    let mut buf = BytesMut::with_capacity(8192);
    let mut chunk = [0u8; 8192];
    loop {
        while let Some(req) = codec.decode(&mut buf).map_err(io::Error::other)? {
            match req.command() {
                Command::Auth(_) => send(&w, &Frame::command_reply("+OK accepted", None))?,
                Command::Event(..) => send(
                    &w,
                    &Frame::command_reply("+OK event listener enabled json", None),
                )?,
                Command::Api(cmd) => {
                    send(&w, &Frame::api_response(answer(&cmd)))?;
                    if cmd == "status"
                        && let Some(go) = go_tx.take()
                    {
                        let _ = go.send(());
                    }
                }
                Command::Exit => {
                    send(&w, &Frame::command_reply("+OK bye", None))?;
                    send(&w, &Frame::disconnect_notice(BYE_NOTICE))?;
                    return Ok(());
                }
                _ => send(&w, &Frame::command_reply("-ERR command not found", None))?,
            }
        }
        let n = rd.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// An idle box: no channels, no module listings, one pickup group.
fn answer(cmd: &str) -> String {
    if cmd == locus_agent::listing::SHOW_CHANNELS {
        "{\"row_count\": 0}\n".into()
    } else if cmd.starts_with("user_data ") {
        "techsupport".into()
    } else {
        "-ERR no reply\n".into()
    }
}

fn run_feed(w: &Shared, feed: Feed, started: &Sender<Instant>) -> io::Result<Sent> {
    let first = Instant::now();
    let _ = started.send(first);
    let frames = match feed {
        Feed::Burst(enc, window) => {
            let mut from = 0;
            let mut i = 0;
            while i < enc.ends.len() {
                if let Some(w) = &window {
                    // Bounded: the agent counts every frame it is sent.
                    while i > w.max + (w.done)() {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                }
                let mut to = enc.ends[i];
                while i + 1 < enc.ends.len() && enc.ends[i + 1] - from <= CHUNK {
                    i += 1;
                    to = enc.ends[i];
                }
                write(w, &enc.bytes[from..to])?;
                from = to;
                i += 1;
            }
            enc.ends.len()
        }
        Feed::Paced {
            mut frames,
            rate,
            probes,
        } => paced(w, &mut frames, rate, probes.as_ref())?,
        Feed::Stream { chunks, per_sec } => {
            let mut n = 0;
            for c in chunks {
                if let Some(r) = per_sec {
                    let due = first + Duration::from_secs_f64(n as f64 / r);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                write(w, &c)?;
                n += 1;
            }
            n
        }
    };
    Ok(Sent {
        first,
        last: Instant::now(),
        frames,
    })
}

/// Writes frames on a fixed schedule (frame `i` due at `i / rate`); all
/// frames due by now go out in one write, stamped with its time.
fn paced(
    w: &Shared,
    frames: &mut [Stamped],
    rate: f64,
    probes: Option<&Probes>,
) -> io::Result<usize> {
    let start = Instant::now();
    let n = frames.len();
    let mut i = 0;
    let mut out = Vec::with_capacity(256 * 1024);
    while i < n {
        let elapsed = start.elapsed().as_secs_f64();
        let due = ((elapsed * rate) as usize + 1).min(n);
        if due <= i {
            let next = Duration::from_secs_f64(i as f64 / rate);
            std::thread::sleep(next.saturating_sub(start.elapsed()));
            continue;
        }
        let stamp = locus_agent::now_us().to_string();
        out.clear();
        for f in &mut frames[i..due] {
            if let Some(at) = f.stamp_at
                && stamp.len() == 16
            {
                f.bytes[at..at + 16].copy_from_slice(stamp.as_bytes());
            }
            out.extend_from_slice(&f.bytes);
        }
        write(w, &out)?;
        let written = Instant::now();
        if let Some(p) = probes {
            for f in &frames[i..due] {
                if let Some(uuid) = &f.probe
                    && p.idle.swap(false, Ordering::AcqRel)
                {
                    let _ = p.tx.send((uuid.clone(), written));
                }
            }
        }
        i = due;
    }
    Ok(n)
}
