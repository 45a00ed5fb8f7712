//! The event bus: every fired event, and every "disconnect everyone"
//! order, goes through one ordered broadcast so each ESL session sees them
//! in the same order FreeSWITCH would deliver them.

use std::sync::{Arc, OnceLock};

use locus_esl::server::{BYE_NOTICE, SHUTDOWN_NOTICE};
use locus_esl::{Event, EventFormat, Frame};

/// Events one listener may fall behind by before it is cut off. FreeSWITCH
/// queues up to 100,000 and drops a listener that loses too many.
pub const QUEUE: usize = 65_536;

/// A fired event with its wire frames, serialised at most once per format.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: Event,
    json: OnceLock<Frame>,
    plain: OnceLock<Frame>,
}

impl Published {
    /// Wraps an event.
    pub fn new(event: Event) -> Self {
        Self {
            event,
            json: OnceLock::new(),
            plain: OnceLock::new(),
        }
    }

    /// The complete ESL frame in `format`.
    pub fn frame(&self, format: EventFormat) -> &Frame {
        match format {
            EventFormat::Json => self.json.get_or_init(|| Frame::event_json(&self.event)),
            EventFormat::Plain => self.plain.get_or_init(|| Frame::event_plain(&self.event)),
        }
    }
}

/// How connected clients are told to go away (dropping sockets without a
/// notice is done by cancelling their connection token instead).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// `Disconnected, goodbye.` (as after `exit`).
    Exit,
    /// `The system is being shut down.` (fsctl shutdown).
    Shutdown,
}

impl Notice {
    /// Body of the `text/disconnect-notice`.
    pub fn body(self) -> &'static str {
        match self {
            Self::Exit => BYE_NOTICE,
            Self::Shutdown => SHUTDOWN_NOTICE,
        }
    }
}

/// One item on the bus.
#[derive(Clone, Debug)]
pub enum Item {
    /// An event for subscribers.
    Event(Arc<Published>),
    /// Every session must send the notice (if any) and close.
    Disconnect(Notice),
}
