//! Test servers for the client tests: a one-connection TCP server on
//! 127.0.0.1:0 that either replays a capture byte for byte (checking that
//! the client writes the captured commands) or is driven by hand.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use locus_esl::capture::{Direction, Record};
use locus_esl::{EslConfig, EslItem, EventStream, Frame, Request, ServerCodec};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tokio_util::codec::FramedRead;

/// Upper bound for any single wait in these tests.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A listener on a free loopback port and its address.
pub async fn listen() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (l, addr)
}

/// A client config for `addr` with test-sized limits.
pub fn config(addr: &str, password: &str) -> EslConfig {
    EslConfig {
        addr: addr.to_owned(),
        password: password.to_owned(),
        connect_timeout: PATIENCE,
        command_timeout: PATIENCE,
        event_queue: 1_000_000,
        ..EslConfig::default()
    }
}

/// The accepted side of one client connection.
pub struct Peer {
    pub reqs: FramedRead<OwnedReadHalf, ServerCodec>,
    pub w: OwnedWriteHalf,
}

impl Peer {
    pub async fn accept(l: &TcpListener) -> Peer {
        let (s, _) = timeout(PATIENCE, l.accept()).await.unwrap().unwrap();
        Self::from_stream(s)
    }

    fn from_stream(s: TcpStream) -> Peer {
        let (r, w) = s.into_split();
        Peer {
            reqs: FramedRead::new(r, ServerCodec::default()),
            w,
        }
    }

    pub async fn send(&mut self, f: &Frame) {
        self.w.write_all(&f.to_bytes().unwrap()).await.unwrap();
    }

    pub async fn send_raw(&mut self, b: &[u8]) {
        self.w.write_all(b).await.unwrap();
    }

    /// The next command, or `None` if the client closed.
    pub async fn request(&mut self) -> Option<Request> {
        timeout(PATIENCE, self.reqs.next())
            .await
            .expect("client sent nothing")
            .map(|r| r.unwrap())
    }

    /// auth/request, expects `auth <password>`, accepts it.
    pub async fn handshake(l: &TcpListener) -> Peer {
        let mut p = Peer::accept(l).await;
        p.send(&Frame::auth_request()).await;
        let req = p.request().await.unwrap();
        assert!(req.line.starts_with("auth "), "{req:?}");
        p.send(&Frame::command_reply("+OK accepted", None)).await;
        p
    }
}

/// Plays a capture as the server: writes every S2C record, checks that each
/// C2S record is what the client wrote (byte for byte), closes at EOF.
/// Returns the number of commands checked.
pub async fn replay_server(l: TcpListener, records: Vec<Record>) -> Result<usize, String> {
    let mut p = Peer::accept(&l).await;
    let mut checked = 0;
    for (i, rec) in records.iter().enumerate() {
        match rec.direction {
            Direction::ServerToClient => {
                p.w.write_all(&rec.data)
                    .await
                    .map_err(|e| format!("record {i}: write: {e}"))?;
            }
            Direction::ClientToServer => {
                let req = match timeout(PATIENCE, p.reqs.next()).await {
                    Ok(Some(Ok(req))) => req,
                    other => return Err(format!("record {i}: no command: {other:?}")),
                };
                let mut wrote = Vec::from(req.line.as_bytes());
                wrote.extend_from_slice(b"\n\n");
                if wrote != rec.data {
                    return Err(format!(
                        "record {i}: client wrote {:?}, capture has {:?}",
                        String::from_utf8_lossy(&wrote),
                        String::from_utf8_lossy(&rec.data)
                    ));
                }
                checked += 1;
            }
            Direction::Eof => break,
        }
    }
    Ok(checked)
}

/// Reads the stream to its end (bounded by `PATIENCE` per item).
pub async fn collect(mut s: EventStream) -> Vec<EslItem> {
    let mut out = Vec::new();
    while let Some(item) = timeout(PATIENCE, s.recv()).await.expect("stream stalled") {
        out.push(item);
    }
    out
}
