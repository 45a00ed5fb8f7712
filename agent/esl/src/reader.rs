//! The two tasks behind a connection. The reader owns the socket's read
//! half: it pairs replies with waiting commands, routes `BACKGROUND_JOB`s to
//! `bgapi` callers, pushes events into the bounded queue, and watches
//! liveness. It never blocks on the consumer: FreeSWITCH queues at most
//! 100,000 events per listener and drops a listener that falls behind, so a
//! full queue costs dropped events (counted, then marked with
//! [`EslItem::Overflow`]), never a stalled socket. The writer owns the
//! write half and queues each reply slot right before writing its command,
//! which keeps the FIFO pairing exact.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, sleep_until};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::codec::EslCodec;
use crate::command::Command;
use crate::event::Event;
use crate::frame::{Frame, Message, content_type as ct};
use crate::stream::{DisconnectReason, EslItem, Shared};

/// A command waiting for its `command/reply` or `api/response`.
pub(crate) struct Pending {
    pub(crate) reply: oneshot::Sender<Frame>,
    /// For `bgapi`: where the `BACKGROUND_JOB` event goes.
    pub(crate) job: Option<oneshot::Sender<Event>>,
}

/// A command for the writer task, with its reply slot.
pub(crate) struct Outgoing {
    pub(crate) cmd: Command,
    pub(crate) pending: Pending,
}

/// Reply slots in the order their commands were written. FreeSWITCH answers
/// commands strictly in order, so the oldest slot owns the next reply.
#[derive(Default)]
pub(crate) struct PendingQueue {
    inner: Mutex<(VecDeque<Pending>, bool)>,
}

impl PendingQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Pending>, bool)> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a slot; refused (and so dropped, failing its caller) once closed.
    fn push(&self, p: Pending) -> bool {
        let mut q = self.lock();
        if q.1 {
            return false;
        }
        q.0.push_back(p);
        true
    }

    fn pop(&self) -> Option<Pending> {
        self.lock().0.pop_front()
    }

    /// Fails every waiting caller and refuses new slots.
    fn close(&self) {
        let drained: Vec<Pending> = {
            let mut q = self.lock();
            q.1 = true;
            q.0.drain(..).collect()
        };
        drop(drained);
    }
}

/// Writes commands in arrival order until cancelled or every sender is gone.
pub(crate) async fn run_writer(
    mut sink: FramedWrite<OwnedWriteHalf, EslCodec>,
    mut rx: mpsc::Receiver<Outgoing>,
    pending: Arc<PendingQueue>,
    shared: Arc<Shared>,
    cancel: CancellationToken,
) {
    loop {
        let out = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            out = rx.recv() => match out {
                Some(out) => out,
                None => break,
            },
        };
        if !pending.push(out.pending) {
            break;
        }
        let res = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            res = sink.send(out.cmd) => res,
        };
        if let Err(e) = res {
            warn!(error = %e, "esl write failed");
            shared.set_reason(DisconnectReason::Error(format!("write: {e}")));
            cancel.cancel();
            break;
        }
    }
}

/// The read side of one connection.
pub(crate) struct Reader {
    pub(crate) frames: FramedRead<OwnedReadHalf, EslCodec>,
    pub(crate) pending: Arc<PendingQueue>,
    pub(crate) events: mpsc::Sender<EslItem>,
    pub(crate) shared: Arc<Shared>,
    pub(crate) writer: mpsc::Sender<Outgoing>,
    pub(crate) cancel: CancellationToken,
    pub(crate) liveness: Duration,
    pub(crate) probe_timeout: Duration,
}

impl Reader {
    /// Reads until the connection ends, then records why, fails waiting
    /// callers and closes the event queue (the stream then yields the reason).
    pub(crate) async fn run(mut self) {
        let reason = self.read_loop().await;
        debug!(reason = ?reason, "esl reader stopped");
        self.shared.set_reason(reason);
        self.pending.close();
        self.cancel.cancel();
    }

    async fn read_loop(&mut self) -> DisconnectReason {
        let mut jobs: HashMap<String, oneshot::Sender<Event>> = HashMap::new();
        let mut deadline = self.quiet_deadline();
        let mut probing = false;
        // Bounded by the connection: every turn reads a frame, fires a
        // deadline (at most two in a row) or ends.
        loop {
            let frame = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return DisconnectReason::Closed,
                () = sleep_until(deadline) => {
                    if self.liveness.is_zero() {
                        deadline = self.quiet_deadline();
                        continue;
                    }
                    if probing {
                        return DisconnectReason::LivenessTimeout;
                    }
                    probing = true;
                    deadline = Instant::now() + self.probe_timeout;
                    self.probe();
                    continue;
                }
                frame = self.frames.next() => frame,
            };
            let frame = match frame {
                None => return DisconnectReason::Eof,
                Some(Err(e)) => {
                    warn!(error = %e, "esl stream broken, dropping connection");
                    return DisconnectReason::Error(e.to_string());
                }
                Some(Ok(frame)) => frame,
            };
            deadline = self.quiet_deadline();
            probing = false;
            if let Some(reason) = self.dispatch(frame, &mut jobs) {
                return reason;
            }
        }
    }

    /// When silence becomes suspicious. A zero `liveness` disables the check
    /// (the timer then just re-arms daily).
    fn quiet_deadline(&self) -> Instant {
        const OFF: Duration = Duration::from_secs(86_400);
        let after = if self.liveness.is_zero() {
            OFF
        } else {
            self.liveness
        };
        Instant::now() + after
    }

    /// Asks `api status` so that a silent but healthy server answers; the
    /// answer itself is discarded (any frame proves liveness).
    fn probe(&self) {
        debug!("esl quiet, probing with api status");
        let (reply, _) = oneshot::channel();
        let out = Outgoing {
            cmd: Command::Api("status".into()),
            pending: Pending { reply, job: None },
        };
        // A full writer queue means commands are in flight; their replies
        // will prove liveness just as well.
        let _ = self.writer.try_send(out);
    }

    fn dispatch(
        &self,
        frame: Frame,
        jobs: &mut HashMap<String, oneshot::Sender<Event>>,
    ) -> Option<DisconnectReason> {
        match frame.content_type() {
            ct::COMMAND_REPLY | ct::API_RESPONSE => {
                let Some(p) = self.pending.pop() else {
                    warn!(
                        content_type = frame.content_type(),
                        "esl reply without a command"
                    );
                    return None;
                };
                if let (Some(job), Some(uuid)) = (p.job, frame.job_uuid()) {
                    // Registered here, before reading on, because the
                    // BACKGROUND_JOB can be the very next frame.
                    jobs.retain(|_, tx| !tx.is_closed());
                    jobs.insert(uuid.to_owned(), job);
                }
                let _ = p.reply.send(frame);
            }
            ct::DISCONNECT_NOTICE => {
                return Some(DisconnectReason::Notice(frame.body_text()));
            }
            ct::EVENT_JSON | ct::EVENT_PLAIN => match Message::try_from(frame) {
                Ok(Message::Event(ev)) => self.on_event(ev, jobs),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "esl event unreadable, skipped"),
            },
            other => debug!(content_type = other, "esl frame ignored"),
        }
        None
    }

    fn on_event(&self, ev: Event, jobs: &mut HashMap<String, oneshot::Sender<Event>>) {
        if ev.name() == Some("BACKGROUND_JOB")
            && let Some(tx) = ev.get("Job-UUID").and_then(|id| jobs.remove(id))
        {
            let _ = tx.send(ev.clone());
        }
        let shared = &self.shared;
        let gap = shared.unreported.swap(0, Ordering::AcqRel);
        if gap > 0
            && self
                .events
                .try_send(EslItem::Overflow { dropped: gap })
                .is_err()
        {
            shared.unreported.fetch_add(gap, Ordering::AcqRel);
            self.drop_event(&ev);
            return;
        }
        match self.events.try_send(EslItem::Event(ev)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(EslItem::Event(ev))) => self.drop_event(&ev),
            Err(_) => {} // the consumer dropped the stream: nobody to tell
        }
    }

    fn drop_event(&self, ev: &Event) {
        let total = self.shared.dropped.fetch_add(1, Ordering::AcqRel) + 1;
        if self.shared.unreported.fetch_add(1, Ordering::AcqRel) == 0 {
            warn!(
                event.name = ev.name().unwrap_or(""),
                dropped.total = total,
                "esl event queue full, dropping events"
            );
        }
    }
}
