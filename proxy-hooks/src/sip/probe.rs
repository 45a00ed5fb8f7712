//! [`options`]: an out-of-dialog OPTIONS of the proxy's own (RFC 3261
//! 11.1, 8.1.1), as the health probes send to boxes and the keepalives to
//! phones.

use bytes::Bytes;

use super::{Headers, SipMessage, StartLine, Transport, Uri};

/// What a response means to the prober whose branches start with
/// `prefix`: `None`, not ours; `Some(None)`, ours but provisional
/// (absorbed, nothing to count); `Some(Some((status, branch)))`, a final
/// answer to our probe `branch`.
pub fn answer_to(msg: &SipMessage, prefix: &str) -> Option<Option<(u16, String)>> {
    let status = msg.status()?;
    let via = msg.top_via().ok()?;
    let branch = via.branch().filter(|b| b.starts_with(prefix))?;
    Some((status >= 200).then(|| (status, branch.to_owned())))
}

/// One OPTIONS to `uri`, sent-by `sent_by` (`host:port`), with `branch`
/// (already `z9hG4bK`-prefixed, RFC 3261 8.1.1.7) and `rport` so the
/// answer comes back to the socket it left from even through NAT (RFC
/// 3581). `agent` goes in `User-Agent`.
pub fn options(
    uri: &Uri,
    sent_by: &str,
    transport: Transport,
    branch: &str,
    cseq: u32,
    agent: &str,
) -> SipMessage {
    let proto = match transport {
        Transport::Udp => "UDP",
        Transport::Tcp => "TCP",
    };
    // Tag and Call-ID reuse the branch's uniqueness: one probe, one dialog-less transaction.
    let unique = branch.trim_start_matches("z9hG4bK-");
    let host = super::uri::split_host_port(sent_by).map_or_else(|| sent_by.to_owned(), |(h, _)| h);
    let mut headers = Headers::default();
    headers.push(
        "Via",
        &format!("SIP/2.0/{proto} {sent_by};branch={branch};rport"),
    );
    headers.push("Max-Forwards", "70");
    headers.push("From", &format!("<sip:locus@{sent_by}>;tag={unique}"));
    headers.push("To", &format!("<{uri}>"));
    headers.push("Call-ID", &format!("{unique}@{host}"));
    headers.push("CSeq", &format!("{cseq} OPTIONS"));
    headers.push("User-Agent", agent);
    headers.push("Content-Length", "0");
    SipMessage {
        start: StartLine::Request {
            method: "OPTIONS".to_string(),
            uri: uri.clone(),
        },
        headers,
        body: Bytes::new(),
    }
}
