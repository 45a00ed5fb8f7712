//! The probe itself: an out-of-dialog OPTIONS (RFC 3261 11.1, 8.1.1) from
//! the proxy's own listener address.

use std::net::SocketAddr;

use bytes::Bytes;

use super::Target;
use crate::sip::{Headers, SipMessage, StartLine, Transport};

/// One OPTIONS to `target`, sent-by `local`, with `branch` (already
/// `z9hG4bK`-prefixed, RFC 3261 8.1.1.7) and `rport` so the answer comes
/// back to the socket it left from even through NAT (RFC 3581).
pub(super) fn options(target: &Target, local: SocketAddr, branch: &str, cseq: u32) -> SipMessage {
    let proto = match target.transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    // Tag and Call-ID reuse the branch's uniqueness: one probe, one dialog-less transaction.
    let unique = branch.trim_start_matches("z9hG4bK-");
    let mut headers = Headers::default();
    headers.push(
        "Via",
        &format!("SIP/2.0/{proto} {local};branch={branch};rport"),
    );
    headers.push("Max-Forwards", "70");
    headers.push("From", &format!("<sip:locus@{local}>;tag={unique}"));
    headers.push("To", &format!("<{}>", target.uri));
    headers.push("Call-ID", &format!("{unique}@{}", local.ip()));
    headers.push("CSeq", &format!("{cseq} OPTIONS"));
    headers.push("User-Agent", "locus-proxy health");
    headers.push("Content-Length", "0");
    SipMessage {
        start: StartLine::Request {
            method: "OPTIONS".to_string(),
            uri: target.uri.clone(),
        },
        headers,
        body: Bytes::new(),
    }
}
