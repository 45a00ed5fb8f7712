//! Inbound ESL client: connect, authenticate, then a cloneable
//! [`EslHandle`] for commands and an [`EventStream`] for events.
//!
//! One connection is three pieces: a reader task (see `reader.rs`), a writer
//! task, and the handles. The connection ends on a disconnect notice, EOF,
//! a read/write/framing error, a failed liveness probe,
//! [`EslHandle::close`], or when every handle is dropped. It is never
//! re-established here: the owner reconnects with [`crate::Backoff`] and
//! resyncs, because events were lost in between.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::time::timeout;
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, info, info_span};

use crate::codec::{DEFAULT_MAX_BODY, DEFAULT_MAX_HEADER, EslCodec, Limits};
use crate::command::Command;
use crate::error::EslError;
use crate::frame::{Frame, content_type as ct};
use crate::handle::{EslHandle, HandleInner};
use crate::reader::{PendingQueue, Reader, run_writer};
use crate::stream::{EventStream, Shared};

/// Commands queued for the writer beyond the one being written.
const WRITER_QUEUE: usize = 64;
/// Frames tolerated between `auth` and its reply (none are expected).
const MAX_FRAMES_BEFORE_AUTH_REPLY: usize = 16;

/// Where and how to connect.
#[derive(Clone)]
pub struct EslConfig {
    /// `host:port` of mod_event_socket, e.g. `127.0.0.1:8021`.
    pub addr: String,
    /// The ESL password (never shown by `Debug`).
    pub password: String,
    /// Limit for TCP connect, and again for the auth exchange.
    pub connect_timeout: Duration,
    /// Limit for each command's reply (and a `bgapi`'s job by default).
    pub command_timeout: Duration,
    /// Events buffered for the consumer before the reader starts dropping.
    pub event_queue: usize,
    /// Largest body accepted (`Content-Length`); bigger closes the connection.
    pub max_body: usize,
    /// Silence after which `api status` is sent; if that gets no answer
    /// within `command_timeout` the connection is declared dead. FreeSWITCH
    /// sends HEARTBEAT every 20 s, so 3x that by default. Zero disables it.
    pub liveness: Duration,
}

impl Default for EslConfig {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8021".into(),
            password: "ClueCon".into(),
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            event_queue: 10_000,
            max_body: DEFAULT_MAX_BODY,
            liveness: Duration::from_secs(60),
        }
    }
}

impl fmt::Debug for EslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EslConfig")
            .field("addr", &self.addr)
            .field("password", &"<redacted>")
            .field("connect_timeout", &self.connect_timeout)
            .field("command_timeout", &self.command_timeout)
            .field("event_queue", &self.event_queue)
            .field("max_body", &self.max_body)
            .field("liveness", &self.liveness)
            .finish()
    }
}

/// Entry point of the inbound client.
#[derive(Debug)]
pub struct EslClient;

impl EslClient {
    /// Connects and authenticates. Events flow only after a subscription
    /// ([`EslHandle::subscribe_json`]); subscribe first, then snapshot.
    ///
    /// Fails with [`EslError::AuthRejected`] on a wrong password,
    /// [`EslError::ConnectTimeout`] / [`EslError::Io`] when the box is
    /// unreachable, [`EslError::Timeout`] when it does not answer the auth.
    pub async fn connect(cfg: &EslConfig) -> Result<(EslHandle, EventStream), EslError> {
        let span = info_span!("esl", peer = %cfg.addr);
        let tcp = timeout(cfg.connect_timeout, TcpStream::connect(&cfg.addr))
            .instrument(span.clone())
            .await
            .map_err(|_| EslError::ConnectTimeout {
                addr: cfg.addr.clone(),
            })??;
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        let limits = Limits {
            max_header: DEFAULT_MAX_HEADER,
            max_body: cfg.max_body,
        };
        let mut frames = FramedRead::new(r, EslCodec::new(limits));
        let mut sink = FramedWrite::new(w, EslCodec::new(limits));
        timeout(
            cfg.connect_timeout,
            authenticate(&mut frames, &mut sink, &cfg.password),
        )
        .instrument(span.clone())
        .await
        .map_err(|_| EslError::Timeout("authentication"))??;
        span.in_scope(|| info!("esl connected"));

        let shared = Arc::new(Shared::default());
        let pending = Arc::new(PendingQueue::default());
        let cancel = CancellationToken::new();
        let (writer_tx, writer_rx) = mpsc::channel(WRITER_QUEUE);
        let (events_tx, events_rx) = mpsc::channel(cfg.event_queue.max(1));
        let reader = Reader {
            frames,
            pending: pending.clone(),
            events: events_tx,
            shared: shared.clone(),
            writer: writer_tx.clone(),
            cancel: cancel.clone(),
            liveness: cfg.liveness,
            probe_timeout: cfg.command_timeout,
        };
        let writer = run_writer(sink, writer_rx, pending, shared.clone(), cancel.clone());
        tokio::spawn(writer.instrument(span.clone()));
        tokio::spawn(reader.run().instrument(span));
        let handle = EslHandle::new(HandleInner {
            writer: writer_tx,
            cancel,
            shared: shared.clone(),
            command_timeout: cfg.command_timeout,
        });
        Ok((handle, EventStream::new(events_rx, shared)))
    }
}

async fn next_frame(
    frames: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, EslCodec>,
) -> Result<Frame, EslError> {
    frames.next().await.ok_or(EslError::Disconnected)?
}

async fn authenticate(
    frames: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, EslCodec>,
    sink: &mut FramedWrite<tokio::net::tcp::OwnedWriteHalf, EslCodec>,
    password: &str,
) -> Result<(), EslError> {
    let first = next_frame(frames).await?;
    if first.content_type() != ct::AUTH_REQUEST {
        return Err(EslError::Unexpected {
            expected: ct::AUTH_REQUEST,
            got: first.content_type().to_owned(),
        });
    }
    sink.send(Command::Auth(password.to_owned())).await?;
    for _ in 0..MAX_FRAMES_BEFORE_AUTH_REPLY {
        let frame = next_frame(frames).await?;
        match frame.content_type() {
            ct::COMMAND_REPLY => {
                let text = frame.reply_text().unwrap_or_default();
                return if text.starts_with("+OK") {
                    Ok(())
                } else {
                    Err(EslError::AuthRejected(text.to_owned()))
                };
            }
            ct::DISCONNECT_NOTICE => return Err(EslError::Disconnected),
            _ => {}
        }
    }
    Err(EslError::Unexpected {
        expected: ct::COMMAND_REPLY,
        got: "(too many frames before the auth reply)".into(),
    })
}
