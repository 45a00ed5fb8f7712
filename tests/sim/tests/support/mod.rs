//! Test helpers: a raw ESL client reading frames byte-exactly (framed by
//! the shared `locus_esl::EslCodec`, the bytes kept as sent), and capture
//! access.

#![allow(dead_code)]

mod compare;

pub use compare::*;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use locus_esl::capture::{self, Direction, Record};
use locus_esl::{EslCodec, Event};
use locus_sim::{Sim, SimConfig, SimHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

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

/// Decodes every complete frame at the front of `buf`, keeping each one's
/// exact bytes; returns them and how many bytes they span.
pub fn parse_frames(buf: &[u8]) -> (Vec<Frame>, usize) {
    let mut src = BytesMut::from(buf);
    let mut codec = EslCodec::default();
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(f) = codec.decode(&mut src).unwrap() {
        let end = buf.len() - src.len();
        out.push(Frame {
            headers: f.headers,
            body: f.body.map(|b| b.to_vec()).unwrap_or_default(),
            raw: buf[at..end].to_vec(),
        });
        at = end;
    }
    (out, at)
}

/// Parses one frame from the front of `buf`, if complete.
pub fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    let f = parse_frames(buf).0.into_iter().next()?;
    let used = f.raw.len();
    Some((f, used))
}

/// A raw ESL client.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Frames decoded from `buf` but not yet returned.
    ready: VecDeque<Frame>,
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
            ready: VecDeque::new(),
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
            let (frames, used) = parse_frames(&self.buf);
            self.buf.drain(..used);
            self.ready.extend(frames);
            if let Some(f) = self.ready.pop_front() {
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

/// A simulator with the periodic heartbeat off, so tests see only the
/// events they cause.
pub async fn sim() -> SimHandle {
    Sim::start(SimConfig {
        heartbeat: None,
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// Column names of each row of a `show ... as json` body, in order.
pub fn keys(json: &str) -> Vec<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_object().unwrap().keys().cloned().collect())
        .collect()
}

/// Records of a fixture file.
pub fn records(name: &str) -> Vec<Record> {
    capture::read(capture::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// Server-to-client frames of a fixture, parsed.
pub fn server_frames(name: &str) -> Vec<Frame> {
    let stream = capture::server_stream(&records(name));
    let (out, used) = parse_frames(&stream);
    assert_eq!(used, stream.len(), "trailing bytes in {name}");
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
