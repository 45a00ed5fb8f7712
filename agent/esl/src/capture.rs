//! Reader for the ESL capture files in `shared/fixtures/esl/`.
//!
//! Format: `#` comment lines, a blank line, then records, each a separator
//! line (`=====<<< S2C #n t=.. len=N`, `=====>>> C2S ...`, `=====!!! EOF ...`)
//! followed by exactly N raw bytes and one LF that is not data. Tests,
//! benchmarks and the simulator's shape checks all read captures this way.

use std::path::Path;

/// Who sent a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// FreeSWITCH to client.
    ServerToClient,
    /// Client to FreeSWITCH.
    ClientToServer,
    /// FreeSWITCH closed the connection.
    Eof,
}

/// One record of a capture.
#[derive(Debug, Clone)]
pub struct Record {
    /// Who sent it.
    pub direction: Direction,
    /// Seconds since connect.
    pub t: f64,
    /// Exact bytes.
    pub data: Vec<u8>,
}

/// Why a capture file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be read.
    #[error("reading capture: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not follow the capture format.
    #[error("malformed capture at byte {0}: {1}")]
    Format(usize, &'static str),
}

/// Reads all records of a capture file.
pub fn read(path: impl AsRef<Path>) -> Result<Vec<Record>, CaptureError> {
    parse(&std::fs::read(path)?)
}

/// Parses capture bytes into records.
pub fn parse(data: &[u8]) -> Result<Vec<Record>, CaptureError> {
    let mut i =
        find(data, 0, b"\n\n").ok_or(CaptureError::Format(0, "no blank line after header"))? + 2;
    let mut out = Vec::new();
    while i < data.len() {
        let eol =
            find(data, i, b"\n").ok_or(CaptureError::Format(i, "separator without newline"))?;
        let sep = std::str::from_utf8(&data[i..eol])
            .map_err(|_| CaptureError::Format(i, "separator not utf-8"))?;
        let direction = if sep.starts_with("=====<<<") {
            Direction::ServerToClient
        } else if sep.starts_with("=====>>>") {
            Direction::ClientToServer
        } else if sep.starts_with("=====!!!") {
            Direction::Eof
        } else {
            return Err(CaptureError::Format(i, "unknown separator"));
        };
        let field = |name: &str| {
            sep.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .ok_or(CaptureError::Format(i, "separator field missing"))
        };
        let len: usize = field("len=")?
            .parse()
            .map_err(|_| CaptureError::Format(i, "bad len"))?;
        let t: f64 = field("t=")?
            .parse()
            .map_err(|_| CaptureError::Format(i, "bad t"))?;
        let start = eol + 1;
        let end = start + len;
        if end > data.len() {
            return Err(CaptureError::Format(i, "record longer than file"));
        }
        out.push(Record {
            direction,
            t,
            data: data[start..end].to_vec(),
        });
        i = end + 1;
    }
    Ok(out)
}

/// The bytes FreeSWITCH sent, joined: the exact stream a client received.
pub fn server_stream(records: &[Record]) -> Vec<u8> {
    records
        .iter()
        .filter(|r| r.direction == Direction::ServerToClient)
        .flat_map(|r| r.data.iter().copied())
        .collect()
}

fn find(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Path of the shared fixtures directory, from a crate's manifest dir
/// (`<repo>/../shared/fixtures/esl`). `LOCUS_FIXTURES` overrides it.
pub fn fixtures_dir(manifest_dir: &str) -> std::path::PathBuf {
    if let Ok(p) = std::env::var("LOCUS_FIXTURES") {
        return p.into();
    }
    let mut p = Path::new(manifest_dir).to_path_buf();
    // Walk up to the repository root (the directory holding Cargo.lock).
    while !p.join("Cargo.lock").exists() {
        if !p.pop() {
            break;
        }
    }
    p.join("../shared/fixtures/esl")
}
