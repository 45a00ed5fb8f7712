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
    /// 3581 4). Over UDP the source port goes into `rport` also when the
    /// client did not ask but its sent-by port is not the source port
    /// (Kamailio's `force_rport`): behind a NAT that changes ports, the
    /// sent-by port reaches nobody. Responses then go back through the
    /// client's NAT binding.
    pub fn stamp_received(&mut self, source: SocketAddr) -> Result<(), SipError> {
        let mut via = self.top_via()?;
        let ip = source.ip().to_string();
        let port_moved =
            via.transport.eq_ignore_ascii_case("UDP") && via.port.unwrap_or(5060) != source.port();
        let wants_rport = match via.rport() {
            Some(asked) => asked.is_none(),
            None => port_moved,
        };
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn stamped(via: &str, source: &str) -> String {
        let text = format!(
            "REGISTER sip:example.com SIP/2.0\r\nVia: {via}\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
        );
        let mut m = SipMessage::parse(text.as_bytes()).unwrap();
        m.stamp_received(source.parse().unwrap()).unwrap();
        m.headers.get("Via").unwrap().to_owned()
    }

    #[test]
    fn the_source_goes_into_the_via_when_it_differs_or_is_asked_for() {
        // Asked for (RFC 3581).
        assert_eq!(
            stamped(
                "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa;rport",
                "198.18.0.2:31000"
            ),
            "SIP/2.0/UDP 192.168.1.2:5060;branch=z9hG4bKa;rport=31000;received=198.18.0.2"
        );
        // Not asked for, behind a NAT that changed the port: forced, or
        // the responses would go to port 5060 of the NAT.
        assert_eq!(
            stamped(
                "SIP/2.0/UDP 192.168.1.2;branch=z9hG4bKb",
                "198.18.0.2:31000"
            ),
            "SIP/2.0/UDP 192.168.1.2;branch=z9hG4bKb;received=198.18.0.2;rport=31000"
        );
        // The port held: only `received` (RFC 3261 18.2.1).
        assert_eq!(
            stamped(
                "SIP/2.0/UDP 192.168.1.2:5062;branch=z9hG4bKc",
                "198.18.0.2:5062"
            ),
            "SIP/2.0/UDP 192.168.1.2:5062;branch=z9hG4bKc;received=198.18.0.2"
        );
        // Sent-by is the source: untouched. TCP ports say nothing.
        assert_eq!(
            stamped(
                "SIP/2.0/UDP 198.18.0.2:5062;branch=z9hG4bKd",
                "198.18.0.2:5062"
            ),
            "SIP/2.0/UDP 198.18.0.2:5062;branch=z9hG4bKd"
        );
        assert_eq!(
            stamped(
                "SIP/2.0/TCP 198.18.0.2:5062;branch=z9hG4bKe",
                "198.18.0.2:40000"
            ),
            "SIP/2.0/TCP 198.18.0.2:5062;branch=z9hG4bKe"
        );
    }
}
