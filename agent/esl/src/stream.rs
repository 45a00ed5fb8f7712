//! The consumer side of a connection: [`EventStream`] yields events, gap
//! markers when the reader had to drop events, and finally why the
//! connection ended.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use tokio::sync::mpsc;

use crate::event::Event;

/// Why a connection ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DisconnectReason {
    /// FreeSWITCH sent `text/disconnect-notice` (after `exit`, a rejected
    /// password, or on shutdown); the body, e.g. `The system is being shut down.\n`.
    Notice(String),
    /// The socket closed without a notice (e.g. FreeSWITCH was killed).
    Eof,
    /// A read or write failed, or a frame was malformed or over the caps.
    Error(String),
    /// Nothing arrived for `liveness`, and an `api status` probe got no
    /// answer within `command_timeout`.
    LivenessTimeout,
    /// This side closed it: [`crate::EslHandle::close`], or every handle dropped.
    Closed,
}

/// One item of an [`EventStream`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EslItem {
    /// An event, in wire order.
    Event(Event),
    /// The queue was full and `dropped` events were lost just before this
    /// point: the consumer's model is stale and must resync (re-read the
    /// full state with `api` commands).
    Overflow {
        /// Events lost since the previous `Overflow`.
        dropped: u64,
    },
    /// The connection ended; always the last item.
    Disconnected(DisconnectReason),
}

/// State shared by the reader task, the handles and the stream.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Events dropped since the last `Overflow` item was produced.
    pub(crate) unreported: AtomicU64,
    /// Events dropped since connect.
    pub(crate) dropped: AtomicU64,
    /// Set once, before the reader drops its sender.
    reason: Mutex<Option<DisconnectReason>>,
}

impl Shared {
    /// Records why the connection ended; the first reason wins.
    pub(crate) fn set_reason(&self, reason: DisconnectReason) {
        let mut slot = self.reason.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(reason);
    }

    pub(crate) fn reason(&self) -> Option<DisconnectReason> {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Events of one connection, in order, ending with
/// [`EslItem::Disconnected`]. Dropping it does not close the connection.
#[derive(Debug)]
pub struct EventStream {
    rx: mpsc::Receiver<EslItem>,
    shared: Arc<Shared>,
    done: bool,
}

impl EventStream {
    pub(crate) fn new(rx: mpsc::Receiver<EslItem>, shared: Arc<Shared>) -> Self {
        Self {
            rx,
            shared,
            done: false,
        }
    }

    /// The next item; `None` after [`EslItem::Disconnected`].
    pub async fn recv(&mut self) -> Option<EslItem> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }

    fn take_overflow(&self) -> Option<EslItem> {
        match self.shared.unreported.swap(0, Ordering::AcqRel) {
            0 => None,
            dropped => Some(EslItem::Overflow { dropped }),
        }
    }
}

impl Stream for EventStream {
    type Item = EslItem;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EslItem>> {
        if self.done {
            return Poll::Ready(None);
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            // The queue is drained: a gap the reader could not mark in-line
            // (the queue was full) is reported now, after every event that
            // preceded it.
            Poll::Pending => match self.take_overflow() {
                Some(item) => Poll::Ready(Some(item)),
                None => Poll::Pending,
            },
            Poll::Ready(None) => {
                if let Some(item) = self.take_overflow() {
                    return Poll::Ready(Some(item));
                }
                self.done = true;
                let reason = self.shared.reason().unwrap_or(DisconnectReason::Eof);
                Poll::Ready(Some(EslItem::Disconnected(reason)))
            }
        }
    }
}
