//! The `locus` command line as a library: configuration layers, the
//! subcommands, `inspect` rendering and the demo. `main.rs` only parses,
//! configures and dispatches.

pub mod cli;
pub mod commands;
pub mod config;
pub mod demo;
pub mod inspect;
pub mod telemetry;
