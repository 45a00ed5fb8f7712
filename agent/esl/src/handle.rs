//! [`EslHandle`]: the command side of a connection. Cheap to clone; every
//! call has `command_timeout`; a timed-out call leaves its reply slot in
//! place so that the late reply is consumed by it and pairing stays exact.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::command::{Command, EventFormat};
use crate::error::EslError;
use crate::event::Event;
use crate::frame::{Frame, content_type as ct};
use crate::reader::{Outgoing, Pending};
use crate::stream::Shared;

pub(crate) struct HandleInner {
    pub(crate) writer: mpsc::Sender<Outgoing>,
    pub(crate) cancel: CancellationToken,
    pub(crate) shared: Arc<Shared>,
    pub(crate) command_timeout: Duration,
}

impl Drop for HandleInner {
    /// The last handle gone means nobody can command this connection any
    /// more: close it rather than leave a reader running unowned.
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Sends commands on one connection (clone it freely).
#[derive(Clone)]
pub struct EslHandle {
    inner: Arc<HandleInner>,
}

impl std::fmt::Debug for EslHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EslHandle")
            .field("closed", &self.is_closed())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl EslHandle {
    pub(crate) fn new(inner: HandleInner) -> Self {
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Sends any command and returns its reply frame (`command/reply` or
    /// `api/response`) untouched.
    pub async fn command(&self, cmd: Command) -> Result<Frame, EslError> {
        self.round_trip(cmd, None, self.inner.command_timeout).await
    }

    /// `api <cmd>`: the body. `-ERR no reply` is [`EslError::NoReply`],
    /// any other `-ERR ...` body [`EslError::Api`], a `command/reply`
    /// `-ERR` (a bare `api`) [`EslError::CommandFailed`].
    pub async fn api(&self, cmd: &str) -> Result<String, EslError> {
        EslError::check_api_body(self.api_raw(cmd).await?)
    }

    /// `api <cmd>`: the body verbatim, `-ERR` bodies included, for parsers
    /// that read FreeSWITCH's error text themselves.
    pub async fn api_raw(&self, cmd: &str) -> Result<String, EslError> {
        let frame = self.command(Command::Api(cmd.to_owned())).await?;
        match frame.content_type() {
            ct::API_RESPONSE => Ok(frame.body_text()),
            ct::COMMAND_REPLY => Err(reply_error(&frame)),
            other => Err(EslError::Unexpected {
                expected: ct::API_RESPONSE,
                got: other.to_owned(),
            }),
        }
    }

    /// `bgapi <cmd>`: waits for the `BACKGROUND_JOB` with the returned
    /// `Job-UUID` (within `command_timeout`) and returns its body, `-ERR`
    /// bodies mapped as by [`EslHandle::api`]. Needs a subscription that
    /// includes `BACKGROUND_JOB` (or `ALL`). The event is also delivered to
    /// the [`crate::EventStream`] as usual.
    pub async fn bgapi(&self, cmd: &str) -> Result<String, EslError> {
        self.bgapi_within(cmd, self.inner.command_timeout).await
    }

    /// [`EslHandle::bgapi`] with its own limit for the job (e.g. an
    /// `originate` that rings for 60 s); the reply itself still has
    /// `command_timeout`.
    pub async fn bgapi_within(&self, cmd: &str, job_timeout: Duration) -> Result<String, EslError> {
        let (job_tx, job_rx) = oneshot::channel();
        let frame = self
            .round_trip(
                Command::BgApi(cmd.to_owned()),
                Some(job_tx),
                self.inner.command_timeout,
            )
            .await?;
        if !is_ok(&frame) || frame.job_uuid().is_none() {
            return Err(reply_error(&frame));
        }
        let ev: Event = timeout(job_timeout, job_rx)
            .await
            .map_err(|_| EslError::Timeout("background job"))?
            .map_err(|_| EslError::Disconnected)?;
        EslError::check_api_body(ev.body().unwrap_or_default().to_owned())
    }

    /// `event json <names...>` (e.g. `["ALL"]`, or
    /// `["CHANNEL_CREATE", "CUSTOM", "sofia::register"]`).
    pub async fn subscribe_json(&self, names: &[&str]) -> Result<(), EslError> {
        self.subscribe(EventFormat::Json, names).await
    }

    /// `event <format> <names...>`.
    pub async fn subscribe(&self, format: EventFormat, names: &[&str]) -> Result<(), EslError> {
        let names = names.iter().map(|s| (*s).to_owned()).collect();
        self.expect_ok(Command::Event(format, names)).await
    }

    /// `exit`: FreeSWITCH answers `+OK bye`, sends a disconnect notice and
    /// closes; the stream then ends with `Disconnected(Notice(..))`.
    pub async fn exit(&self) -> Result<(), EslError> {
        self.expect_ok(Command::Exit).await
    }

    /// Closes the connection now; the stream ends with `Disconnected(Closed)`.
    pub fn close(&self) {
        self.inner.cancel.cancel();
    }

    /// True once the connection has ended, for whatever reason.
    pub fn is_closed(&self) -> bool {
        self.inner.cancel.is_cancelled()
    }

    /// Events dropped on this connection because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.inner.shared.dropped.load(Ordering::Acquire)
    }

    async fn expect_ok(&self, cmd: Command) -> Result<(), EslError> {
        let frame = self.command(cmd).await?;
        if is_ok(&frame) {
            Ok(())
        } else {
            Err(reply_error(&frame))
        }
    }

    async fn round_trip(
        &self,
        cmd: Command,
        job: Option<oneshot::Sender<Event>>,
        limit: Duration,
    ) -> Result<Frame, EslError> {
        // Refused before anything is queued, so a bad command costs no slot.
        cmd.line()?;
        if self.is_closed() {
            return Err(EslError::Disconnected);
        }
        let (reply, rx) = oneshot::channel();
        let out = Outgoing {
            cmd,
            pending: Pending { reply, job },
        };
        let exchange = async {
            let sent = self.inner.writer.send(out).await;
            sent.map_err(|_| EslError::Disconnected)?;
            rx.await.map_err(|_| EslError::Disconnected)
        };
        timeout(limit, exchange)
            .await
            .map_err(|_| EslError::Timeout("command reply"))?
    }
}

fn is_ok(frame: &Frame) -> bool {
    frame.content_type() == ct::COMMAND_REPLY
        && frame.reply_text().is_some_and(|t| t.starts_with("+OK"))
}

fn reply_error(frame: &Frame) -> EslError {
    match frame.reply_text() {
        Some(text) => EslError::CommandFailed(text.to_owned()),
        None => EslError::Unexpected {
            expected: ct::COMMAND_REPLY,
            got: frame.content_type().to_owned(),
        },
    }
}
