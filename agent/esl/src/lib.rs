//! FreeSWITCH Event Socket Layer (ESL): the wire codec, the event type,
//! an inbound client, and a reader for the captured conversations in
//! `shared/fixtures/esl/`.

pub mod capture;
pub mod event;

pub use event::{Event, EventError};
