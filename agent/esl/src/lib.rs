//! FreeSWITCH Event Socket Layer (ESL): the wire codec (client and server
//! side), the event type, an inbound client with a never-blocking reader,
//! reconnect backoff, and a reader for the captured conversations in
//! `shared/fixtures/esl/`.

pub mod backoff;
pub mod capture;
mod client;
pub mod codec;
pub mod command;
pub mod error;
pub mod event;
pub mod frame;
mod handle;
mod reader;
pub mod server;
mod stream;

pub use backoff::Backoff;
pub use client::{EslClient, EslConfig};
pub use codec::{EslCodec, Limits};
pub use command::{Command, EventFormat};
pub use error::EslError;
pub use event::{Event, EventError};
pub use frame::{Frame, Message};
pub use handle::EslHandle;
pub use server::{Request, ServerCodec};
pub use stream::{DisconnectReason, EslItem, EventStream};
