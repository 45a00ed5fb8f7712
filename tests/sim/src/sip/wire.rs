//! Building the messages the box sends: identifiers, responses (RFC 3261
//! 8.2.6, 12.1.1), requests, and where a URI points to.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use locus_proxy::sip::{Headers, NameAddr, SipMessage, StartLine, Uri};

/// `Server` / `User-Agent` of FreeSWITCH 1.10.12.
pub(super) const AGENT: &str = "FreeSWITCH-mod_sofia/1.10.12-release~64bit";

/// `Allow` as vanilla sofia sends it (every capture).
pub(super) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, MESSAGE, INFO, UPDATE, REGISTER, REFER, NOTIFY, PUBLISH, SUBSCRIBE";

/// `Supported` of vanilla sofia's responses.
pub(super) const SUPPORTED: &str = "timer, path, replaces";

/// `Allow-Events` of vanilla sofia's INVITE responses.
pub(super) const ALLOW_EVENTS: &str = "talk, hold, conference, presence, as-feature-event, dialog, line-seize, call-info, sla, include-session-description, presence.winfo, message-summary, refer";

/// A random token for tags and Call-IDs.
pub(super) fn token() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A new Via branch with the RFC 3261 magic cookie.
pub(super) fn branch() -> String {
    format!("z9hG4bK{}", token())
}

/// Reason phrase of the statuses the box sends.
pub(super) fn reason(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        302 => "Moved Temporarily",
        401 => "Unauthorized",
        407 => "Proxy Authentication Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        486 => "Busy Here",
        487 => "Request Terminated",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Unknown",
    }
}

/// A response to `req` naming the box in `User-Agent` (sofia sends no
/// `Server`, captures in `fixtures/farm/`).
pub(super) fn respond(req: &SipMessage, status: u16, tag: Option<&str>) -> SipMessage {
    let mut r = req.reply(status, reason(status), tag);
    r.headers.push("User-Agent", AGENT);
    r
}

/// A dialog-creating response to an INVITE (18x, 2xx): the Record-Route
/// copied (RFC 3261 12.1.1), a Contact, and SDP when given.
pub(super) fn respond_dialog(
    req: &SipMessage,
    status: u16,
    tag: &str,
    contact: &str,
    sdp: Option<String>,
) -> SipMessage {
    let mut r = respond(req, status, Some(tag));
    for rr in req.headers.get_all("Record-Route") {
        r.headers.push("Record-Route", rr);
    }
    r.headers.push("Contact", contact);
    if let Some(sdp) = sdp {
        r.headers.push("Content-Type", "application/sdp");
        r.set_body(Bytes::from(sdp));
    }
    r
}

/// A request with the given headers (Content-Length and body added).
pub(super) fn request(
    method: &str,
    uri: Uri,
    mut headers: Headers,
    body: Option<String>,
) -> SipMessage {
    let body = body.map(Bytes::from).unwrap_or_default();
    if !body.is_empty() {
        headers.push("Content-Type", "application/sdp");
    }
    headers.push("Content-Length", &body.len().to_string());
    SipMessage {
        start: StartLine::Request {
            method: method.to_owned(),
            uri,
        },
        headers,
        body,
    }
}

/// The socket address a URI names, when its host is an IP address (the
/// farm runs on addresses; no DNS here).
pub(super) fn addr_of(uri: &Uri) -> Option<SocketAddr> {
    let ip: IpAddr = uri.host.parse().ok()?;
    Some(SocketAddr::new(ip, uri.port.unwrap_or(5060)))
}

/// The address of the first of `routes` (a loose route), if any.
pub(super) fn first_hop(routes: &[String]) -> Option<SocketAddr> {
    let first = routes.first()?;
    NameAddr::parse(first).ok().and_then(|n| addr_of(&n.uri))
}

/// The user part of a message's From.
pub(super) fn from_user(msg: &SipMessage) -> Option<String> {
    msg.from()
        .ok()
        .and_then(|f| f.uri.user_name().map(str::to_owned))
}

/// The user part of a request's Request-URI.
pub(super) fn ruri_user(msg: &SipMessage) -> Option<String> {
    msg.request_uri()
        .and_then(|u| u.user_name().map(str::to_owned))
}
