//! Our own messages in the spirit of RFC 4475 (SIP torture tests), one per
//! category it lists: valid but weird (accepted and forwarded), invalid
//! (answered 400, 416 or 505, never forwarded), faulty responses (dropped).
//! `LOCAL` stands for the sender's address; every request has its own
//! Call-ID, the case name.

#![allow(dead_code, unused_imports)] // each test binary uses part of it

mod invalid;
mod valid;

pub use invalid::invalid;
pub use valid::valid;

/// What the proxy must do with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    /// Forward it (valid, however odd).
    Accept,
    /// Answer this status; `by_parser` when the parser itself marks the
    /// fault (start line, header line, Content-Length), else the core's
    /// header checks find it.
    Answer { status: u16, by_parser: bool },
}

pub struct Case {
    pub name: &'static str,
    pub text: String,
    pub want: Want,
}

/// A plain request of `method` to `ruri` with `extra` header lines
/// (CRLF-terminated) and `body` (Content-Length added unless `extra` has one).
pub fn request(name: &str, method: &str, ruri: &str, extra: &str, body: &str) -> String {
    let length = if extra.to_ascii_lowercase().contains("content-length")
        || extra.starts_with("l:")
        || extra.contains("\r\nl:")
    {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    format!(
        "{method} {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP LOCAL;branch=z9hG4bK{name}\r\n\
Max-Forwards: 70\r\nFrom: <sip:starr@example.org>;tag={name}\r\nTo: <sip:ringo@farm.example.com>\r\n\
Call-ID: {name}\r\nCSeq: 1 {method}\r\n{extra}{length}\r\n{body}"
    )
}

pub(crate) fn accept(name: &'static str, text: String) -> Case {
    Case {
        name,
        text,
        want: Want::Accept,
    }
}

pub(crate) fn answer(name: &'static str, status: u16, by_parser: bool, text: String) -> Case {
    Case {
        name,
        text,
        want: Want::Answer { status, by_parser },
    }
}

/// Responses not by the book (RFC 4475 3.1.2.5, 3.1.2.19; RFC 3261 18.3).
pub fn faulty_responses() -> Vec<(&'static str, String)> {
    let resp = |start: &str, extra: &str| {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK-lpx.1\r\n\
From: <sip:a@example.org>;tag=1\r\nTo: <sip:b@example.org>;tag=2\r\nCall-ID: r1\r\n\
CSeq: 1 INVITE\r\n{extra}\r\n"
        )
    };
    vec![
        ("version", resp("SIP/7.0 200 OK", "Content-Length: 0\r\n")),
        (
            "bigcode",
            resp(
                "SIP/2.0 4294967301 better not break",
                "Content-Length: 0\r\n",
            ),
        ),
        (
            "toolong",
            resp("SIP/2.0 180 Ringing", "Content-Length: 500\r\n"),
        ),
        ("negative", resp("SIP/2.0 200 OK", "Content-Length: -1\r\n")),
    ]
}
