//! The event bus: every fired event, and every "disconnect everyone"
//! order, goes through one ordered broadcast so each ESL session sees them
//! in the same order FreeSWITCH would deliver them.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use locus_esl::Event;

use crate::wire::{self, EventFormat};

/// Events one listener may fall behind by before it is cut off. FreeSWITCH
/// queues up to 100,000 and drops a listener that loses too many.
pub const QUEUE: usize = 65_536;

/// A fired event with its wire frames, serialised at most once per format.
#[derive(Debug)]
pub struct Published {
    /// The event.
    pub event: Event,
    json: OnceLock<Bytes>,
    plain: OnceLock<Bytes>,
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
    pub fn frame(&self, format: EventFormat) -> Bytes {
        match format {
            EventFormat::Json => self
                .json
                .get_or_init(|| wire::event(format, &self.event.to_json()))
                .clone(),
            EventFormat::Plain => self
                .plain
                .get_or_init(|| wire::event(format, &self.event.to_plain()))
                .clone(),
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
            Self::Exit => GOODBYE,
            Self::Shutdown => "The system is being shut down.\n",
        }
    }
}

/// Notice body after `exit` or a wrong password.
pub const GOODBYE: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

/// One item on the bus.
#[derive(Clone, Debug)]
pub enum Item {
    /// An event for subscribers.
    Event(Arc<Published>),
    /// Every session must send the notice (if any) and close.
    Disconnect(Notice),
}
