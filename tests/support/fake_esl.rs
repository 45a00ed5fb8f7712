//! A tiny scripted ESL server for fault tests: it authenticates any
//! password, acknowledges `event json`, answers the resync's api commands
//! with `-ERR no reply` (the agent treats that as "nothing there") and
//! `user_data` with a fixed group list, and lets the test write raw bytes
//! (good events, garbage, oversized frames) into the newest subscribed
//! connection. Outgoing frames use the same builders as the simulator
//! (`Frame::auth_request`, `command_reply`, `api_response`, `event_json`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use locus_esl::{Event, Frame};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Most bytes of pending client commands kept (the agent's are tiny).
const MAX_PENDING: usize = 64 * 1024;

/// Handle to the fake server; dropping it stops the server.
pub struct FakeEsl {
    /// Where it listens.
    pub addr: SocketAddr,
    /// TCP connections accepted so far.
    pub accepts: Arc<AtomicUsize>,
    /// Connections that sent `event json ...`.
    pub subscribed: Arc<AtomicUsize>,
    /// `api` commands received, in order.
    pub apis: Arc<Mutex<Vec<String>>>,
    current: Arc<Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>>,
    stop: CancellationToken,
}

impl Drop for FakeEsl {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

#[derive(Clone)]
struct Conn {
    subscribed: Arc<AtomicUsize>,
    apis: Arc<Mutex<Vec<String>>>,
    current: Arc<Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>>,
    user_data: String,
    stop: CancellationToken,
}

impl FakeEsl {
    /// Listens on a free loopback port; `user_data` is the body returned
    /// for every `api user_data ...`.
    pub async fn start(user_data: &str) -> FakeEsl {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let accepts = Arc::new(AtomicUsize::new(0));
        let conn = Conn {
            subscribed: Arc::new(AtomicUsize::new(0)),
            apis: Arc::new(Mutex::new(Vec::new())),
            current: Arc::new(Mutex::new(None)),
            user_data: user_data.to_owned(),
            stop: stop.clone(),
        };
        let fake = FakeEsl {
            addr,
            accepts: accepts.clone(),
            subscribed: conn.subscribed.clone(),
            apis: conn.apis.clone(),
            current: conn.current.clone(),
            stop: stop.clone(),
        };
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stop.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((stream, _)) = accepted else { continue };
                accepts.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(stream, conn.clone()));
            }
        });
        fake
    }

    /// Writes raw bytes into the newest subscribed connection.
    pub fn send_raw(&self, bytes: impl Into<Vec<u8>>) {
        let tx = self.current.lock().unwrap().clone();
        tx.expect("no subscribed connection")
            .send(bytes.into())
            .expect("connection gone");
    }

    /// Sends `ev` as a `text/event-json` frame.
    pub fn send_event(&self, ev: &Event) {
        self.send_raw(Frame::event_json(ev).to_bytes().unwrap().to_vec());
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }

    /// Connections that subscribed so far.
    pub fn subscriptions(&self) -> usize {
        self.subscribed.load(Ordering::SeqCst)
    }
}

async fn serve(stream: TcpStream, c: Conn) {
    let (mut rd, mut wr) = stream.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let write = |f: Frame| f.to_bytes().unwrap().to_vec();
    if wr.write_all(&write(Frame::auth_request())).await.is_err() {
        return;
    }
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        tokio::select! {
            _ = c.stop.cancelled() => return,
            raw = rx.recv() => {
                let Some(raw) = raw else { return };
                if wr.write_all(&raw).await.is_err() {
                    return;
                }
            }
            n = rd.read(&mut chunk) => {
                let Ok(n) = n else { return };
                if n == 0 || buf.len() + n > MAX_PENDING {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                // A client command is one line ended by a blank line.
                while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let line = String::from_utf8_lossy(&buf[..end]).trim().to_owned();
                    buf.drain(..end + 2);
                    let reply = answer(&c, &line, &tx);
                    if wr.write_all(&write(reply)).await.is_err() {
                        return;
                    }
                    if line == "exit" {
                        return;
                    }
                }
            }
        }
    }
}

fn answer(c: &Conn, line: &str, tx: &mpsc::UnboundedSender<Vec<u8>>) -> Frame {
    if line.starts_with("auth ") {
        return Frame::command_reply("+OK accepted", None);
    }
    if line.starts_with("event ") {
        *c.current.lock().unwrap() = Some(tx.clone());
        c.subscribed.fetch_add(1, Ordering::SeqCst);
        return Frame::command_reply("+OK event listener enabled json", None);
    }
    if let Some(api) = line.strip_prefix("api ") {
        c.apis.lock().unwrap().push(api.to_owned());
        if api.starts_with("user_data ") {
            return Frame::api_response(c.user_data.clone());
        }
        return Frame::api_response("-ERR no reply\n");
    }
    if line == "exit" {
        return Frame::command_reply("+OK bye", None);
    }
    Frame::command_reply("-ERR command not found", None)
}
