//! Test helpers: a raw ESL client reading frames byte-exactly, and capture
//! access.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use locus_esl::Event;
use locus_esl::capture::{self, Direction, Record};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a test waits for any one frame.
pub const WAIT: Duration = Duration::from_secs(5);

/// One frame as received.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Header lines in order.
    pub headers: Vec<(String, String)>,
    /// Body (after the blank line), if `Content-Length` was present.
    pub body: Vec<u8>,
    /// Exact bytes of the frame.
    pub raw: Vec<u8>,
}

impl Frame {
    /// A header value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `Content-Type`.
    pub fn ctype(&self) -> &str {
        self.get("Content-Type").unwrap_or_default()
    }

    /// The event carried, if an event frame.
    pub fn event(&self) -> Option<Event> {
        match self.ctype() {
            "text/event-json" => Some(Event::from_json(&self.body).unwrap()),
            "text/event-plain" => Some(Event::from_plain(&self.body).unwrap()),
            _ => None,
        }
    }

    /// Body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Parses one frame from the front of `buf`, if complete.
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let end = buf.windows(2).position(|w| w == b"\n\n")? + 2;
    let head = std::str::from_utf8(&buf[..end - 2]).unwrap();
    let headers: Vec<(String, String)> = head
        .split('\n')
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or((l, ""));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "Content-Length")
        .map_or(0, |(_, v)| v.parse().unwrap());
    if buf.len() < end + len {
        return None;
    }
    let frame = Frame {
        headers,
        body: buf[end..end + len].to_vec(),
        raw: buf[..end + len].to_vec(),
    };
    Some((frame, end + len))
}

/// A raw ESL client.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    /// Connects (no auth).
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Connects, authenticates and subscribes with `event <sub>` (if any).
    pub async fn ready(addr: SocketAddr, sub: Option<&str>) -> Self {
        let mut c = Self::connect(addr).await;
        assert_eq!(c.frame().await.ctype(), "auth/request");
        c.send("auth ClueCon").await;
        assert_eq!(c.frame().await.get("Reply-Text"), Some("+OK accepted"));
        if let Some(s) = sub {
            c.send(&format!("event {s}")).await;
            let r = c.frame().await;
            assert!(
                r.get("Reply-Text")
                    .unwrap()
                    .starts_with("+OK event listener enabled")
            );
        }
        c
    }

    /// Sends a command (adds the blank line).
    pub async fn send(&mut self, cmd: &str) {
        self.send_raw(format!("{cmd}\n\n").as_bytes()).await;
    }

    /// Sends bytes as is.
    pub async fn send_raw(&mut self, b: &[u8]) {
        self.stream.write_all(b).await.unwrap();
    }

    /// Next frame, or `None` at EOF.
    pub async fn try_frame(&mut self) -> Option<Frame> {
        loop {
            if let Some((f, n)) = parse_frame(&self.buf) {
                self.buf.drain(..n);
                return Some(f);
            }
            let mut chunk = [0u8; 16384];
            let n = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("timed out waiting for a frame")
                .unwrap_or(0);
            if n == 0 {
                assert!(self.buf.is_empty(), "EOF inside a frame");
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Next frame (panics at EOF).
    pub async fn frame(&mut self) -> Frame {
        self.try_frame().await.expect("unexpected EOF")
    }

    /// Next frame that is not an event.
    pub async fn reply(&mut self) -> Frame {
        loop {
            let f = self.frame().await;
            if !f.ctype().starts_with("text/event-") {
                return f;
            }
        }
    }

    /// Sends `api <cmd>` and returns the api/response frame.
    pub async fn api(&mut self, cmd: &str) -> Frame {
        self.send(&format!("api {cmd}")).await;
        self.reply().await
    }

    /// Reads events until one satisfies `last` (inclusive).
    pub async fn events_until(&mut self, last: impl Fn(&Event) -> bool) -> Vec<Event> {
        let mut out = Vec::new();
        loop {
            let f = self.frame().await;
            if let Some(ev) = f.event() {
                let done = last(&ev);
                out.push(ev);
                if done {
                    return out;
                }
            }
        }
    }

    /// Asserts the server closes the connection next.
    pub async fn expect_eof(&mut self) {
        assert!(self.try_frame().await.is_none(), "expected EOF");
    }
}

/// Records of a fixture file.
pub fn records(name: &str) -> Vec<Record> {
    capture::read(capture::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// Server-to-client frames of a fixture, parsed.
pub fn server_frames(name: &str) -> Vec<Frame> {
    let stream = capture::server_stream(&records(name));
    let mut out = Vec::new();
    let mut at = 0;
    while let Some((f, n)) = parse_frame(&stream[at..]) {
        out.push(f);
        at += n;
    }
    assert_eq!(at, stream.len(), "trailing bytes in {name}");
    out
}

/// Events of a fixture.
pub fn capture_events(name: &str) -> Vec<Event> {
    server_frames(name)
        .iter()
        .filter_map(Frame::event)
        .collect()
}

/// `Event-Name`, or `CUSTOM <subclass>`.
pub fn kind(ev: &Event) -> String {
    match ev.subclass() {
        Some(s) => format!("CUSTOM {s}"),
        None => ev.name().unwrap_or_default().to_owned(),
    }
}

/// Pairs each C2S command of a fixture with the next non-event S2C frame.
pub fn command_replies(name: &str) -> Vec<(String, Frame)> {
    let recs = records(name);
    let mut out = Vec::new();
    let mut pending: Option<String> = None;
    for r in &recs {
        match r.direction {
            Direction::ClientToServer => {
                pending = Some(String::from_utf8_lossy(&r.data).trim_end().to_owned())
            }
            Direction::ServerToClient => {
                let (f, _) = parse_frame(&r.data).unwrap();
                if f.ctype().starts_with("text/event-") {
                    continue;
                }
                if let Some(cmd) = pending.take() {
                    out.push((cmd, f));
                }
            }
            Direction::Eof => {}
        }
    }
    out
}

/// Header names of an event without the `variable_*` ones, in order.
pub fn nonvar_names(e: &Event) -> Vec<String> {
    e.headers()
        .filter(|(k, _)| !k.starts_with("variable_"))
        .map(|(k, _)| k.to_owned())
        .collect()
}

/// `variable_*` header names, sorted.
pub fn var_names(e: &Event) -> Vec<String> {
    let mut v: Vec<String> = e
        .headers()
        .filter(|(k, _)| k.starts_with("variable_"))
        .map(|(k, _)| k.to_owned())
        .collect();
    v.sort();
    v
}

/// Compares the simulator's events with a capture's, event by event: the
/// same kinds in the same order, the same non-variable header names in
/// the same order, the same set of variable names. Returns the differences.
pub fn compare(sim: &[Event], cap: &[Event]) -> Vec<String> {
    let mut diffs = Vec::new();
    let sk: Vec<String> = sim.iter().map(kind).collect();
    let ck: Vec<String> = cap.iter().map(kind).collect();
    if sk != ck {
        let first = sk
            .iter()
            .zip(&ck)
            .position(|(a, b)| a != b)
            .unwrap_or(sk.len().min(ck.len()));
        diffs.push(format!(
            "kinds differ at {first} (sim {} events, capture {}): sim {:?} capture {:?}",
            sk.len(),
            ck.len(),
            sk.get(first..(first + 5).min(sk.len())),
            ck.get(first..(first + 5).min(ck.len())),
        ));
        return diffs;
    }
    for (i, (s, c)) in sim.iter().zip(cap).enumerate() {
        let (sn, cn) = (nonvar_names(s), nonvar_names(c));
        if sn != cn {
            let only_sim: Vec<_> = sn.iter().filter(|x| !cn.contains(x)).collect();
            let only_cap: Vec<_> = cn.iter().filter(|x| !sn.contains(x)).collect();
            let at = sn.iter().zip(&cn).position(|(a, b)| a != b);
            diffs.push(format!(
                "#{i} {}: headers sim-only {only_sim:?} capture-only {only_cap:?} first order difference at {at:?}",
                kind(c)
            ));
        }
        let (sv, cv) = (var_names(s), var_names(c));
        if sv != cv {
            let extra: Vec<_> = sv.iter().filter(|x| !cv.contains(x)).collect();
            let missing: Vec<_> = cv.iter().filter(|x| !sv.contains(x)).collect();
            diffs.push(format!(
                "#{i} {}: variables extra {extra:?} missing {missing:?}",
                kind(c)
            ));
        }
    }
    diffs
}

/// The capture's events, minus HEARTBEAT / RE_SCHEDULE, minus the `API`
/// events of the recording harness's own `api` commands (the dialplan's
/// expansions stay), minus the kinds in `skip`.
pub fn scenario_events(name: &str, skip: &[&str]) -> Vec<Event> {
    let mut harness: Vec<String> = records(name)
        .iter()
        .filter(|r| r.direction == Direction::ClientToServer)
        .filter_map(|r| {
            let line = String::from_utf8_lossy(&r.data).trim_end().to_owned();
            line.strip_prefix("api ")
                .or_else(|| line.strip_prefix("bgapi "))
                .map(str::to_owned)
        })
        .collect();
    let mut out = Vec::new();
    for e in capture_events(name) {
        if matches!(e.name(), Some("HEARTBEAT") | Some("RE_SCHEDULE"))
            || skip.contains(&kind(&e).as_str())
        {
            continue;
        }
        // `show` is only ever the harness's (the dialplan never runs it).
        if e.name() == Some("API") && e.get("API-Command") == Some("show") {
            continue;
        }
        if e.name() == Some("API") {
            let full = match e.get("API-Command-Argument") {
                Some(a) => format!("{} {a}", e.get("API-Command").unwrap_or_default()),
                None => e.get("API-Command").unwrap_or_default().to_owned(),
            };
            if let Some(i) = harness.iter().position(|h| *h == full) {
                harness.remove(i);
                continue;
            }
        }
        out.push(e);
    }
    out
}

/// Reads events until the HEARTBEAT the test fires as an end marker.
pub async fn events_until_marker(c: &mut Client) -> Vec<Event> {
    let mut evs = c.events_until(|e| e.name() == Some("HEARTBEAT")).await;
    evs.pop();
    evs
}

/// Splits events into streams: one per channel (in order of first
/// appearance of its `Unique-ID`), plus one for events without a channel.
pub fn per_leg(events: &[Event]) -> Vec<Vec<Event>> {
    let mut ids: Vec<String> = Vec::new();
    let mut streams: Vec<Vec<Event>> = vec![Vec::new()];
    for e in events {
        match e.get("Unique-ID") {
            Some(u) => {
                let i = match ids.iter().position(|x| x == u) {
                    Some(i) => i,
                    None => {
                        ids.push(u.to_owned());
                        streams.push(Vec::new());
                        ids.len() - 1
                    }
                };
                streams[i + 1].push(e.clone());
            }
            None => streams[0].push(e.clone()),
        }
    }
    streams
}

/// [`compare`] per stream of [`per_leg`]: thread interleaving between legs
/// differs from run to run on a real box, the order within a leg does not.
pub fn compare_per_leg(sim: &[Event], cap: &[Event]) -> Vec<String> {
    let (s, c) = (per_leg(sim), per_leg(cap));
    if s.len() != c.len() {
        return vec![format!(
            "{} streams in sim, {} in capture",
            s.len(),
            c.len()
        )];
    }
    s.iter()
        .zip(&c)
        .enumerate()
        .flat_map(|(i, (a, b))| {
            compare(a, b)
                .into_iter()
                .map(move |d| format!("leg {i}: {d}"))
        })
        .collect()
}
