//! What a proxy writes on its own: responses built from a request (RFC 3261
//! 8.2.6: 100 Trying, 400, 403, 483, 503) and the `received`/`rport`
//! stamps on the top Via of a request it receives (RFC 3261 18.2.1, RFC 3581).

use std::net::SocketAddr;

use bytes::Bytes;

use super::SipError;
use super::header::{Header, Headers};
use super::message::{SipMessage, StartLine};

impl SipMessage {
    /// A response to this request: every Via (in order), From, To (with
    /// `to_tag` added when the To has none; never for 100, RFC 3261 8.2.6.2),
    /// Call-ID, CSeq; no body.
    pub fn reply(&self, status: u16, reason: &str, to_tag: Option<&str>) -> SipMessage {
        let mut headers = Headers::default();
        for h in &self.headers.0 {
            if ["Via", "From", "To", "Call-ID", "CSeq"]
                .iter()
                .any(|n| super::header::same_name(&h.name, n))
            {
                headers.0.push(Header {
                    name: h.name.clone(),
                    value: h.value.clone(),
                });
            }
        }
        if let Some(tag) = to_tag.filter(|_| status > 100)
            && self.to().is_ok_and(|to| to.tag().is_none())
            && let Some(to) = headers.get("To").map(str::to_string)
        {
            headers.set("To", &format!("{to};tag={tag}"));
        }
        headers.push("Content-Length", "0");
        SipMessage {
            start: StartLine::Response {
                status,
                reason: reason.to_string(),
            },
            headers,
            body: Bytes::new(),
        }
    }

    /// Stamps the top Via with where the request really came from: `received`
    /// when the sent-by host is not the source address (RFC 3261 18.2.1) or
    /// `rport` was asked for, and the source port into a bare `rport` (RFC
    /// 3581 4). Responses then go back through the client's NAT binding.
    pub fn stamp_received(&mut self, source: SocketAddr) -> Result<(), SipError> {
        let mut via = self.top_via()?;
        let ip = source.ip().to_string();
        let wants_rport = via.rport() == Some(None);
        if via.host != ip || wants_rport {
            via.params.set("received", Some(&ip));
        }
        if wants_rport {
            via.params.set("rport", Some(&source.port().to_string()));
        }
        self.headers.set_first("Via", &via.to_string());
        Ok(())
    }
}
