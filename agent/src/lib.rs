//! The Locus agent: reads one FreeSWITCH box's Event Socket, keeps a live
//! model of its calls, and publishes it to the store (Redis).

pub mod listing;
pub mod model;
