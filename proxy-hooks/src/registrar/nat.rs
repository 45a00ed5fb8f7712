//! Whether a registering phone is behind a NAT (issue 8, "NAT facts per
//! binding"), as Kamailio's `nat_uac_test` tells it: the address its
//! REGISTER came from against what the phone wrote about itself.
//!
//! * The top Via's sent-by is an address other than the packet's source
//!   (RFC 3581: the NAT rewrote the source, not the Via); over UDP a
//!   sent-by port other than the source port too (a port-translating
//!   NAT). TCP source ports are ephemeral and say nothing.
//! * The Contact names a private, carrier-grade-NAT, link-local or
//!   unique-local address ([`crate::policy::is_private`]) that is not the
//!   source.
//!
//! A host name in Via or Contact proves nothing either way. The answer is
//! kept with the binding (`nat`) and shown by `locus inspect`; routing
//! does not depend on it: every phone is reached through its flow.

use std::net::{IpAddr, SocketAddr};

use crate::policy::is_private;
use crate::proxy::Flow;
use crate::sip::{SipMessage, Transport, Uri};

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Whether `req` (a REGISTER from `flow` for `contact`) shows a NAT.
pub(crate) fn behind_nat(req: &SipMessage, flow: &Flow, contact: &Uri) -> bool {
    let src: SocketAddr = flow.source;
    let via = req
        .top_via()
        .ok()
        .map(|v| (v.host.parse::<IpAddr>().ok(), v.port.unwrap_or(5060)));
    let via_moved = match via {
        Some((Some(ip), _)) if !same_ip(ip, src.ip()) => true,
        Some((_, port)) => flow.transport == Transport::Udp && port != src.port(),
        None => false,
    };
    let contact_private = contact
        .host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| is_private(ip) && !same_ip(ip, src.ip()));
    via_moved || contact_private
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn check(via: &str, contact: &str, source: &str, transport: Transport) -> bool {
        let req = SipMessage::parse(
            format!(
                "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP {via};branch=z9hG4bKx;rport\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
        let flow = Flow {
            source: source.parse().unwrap(),
            transport,
            conn: None,
            local: "198.18.0.1:5060".parse().unwrap(),
        };
        behind_nat(&req, &flow, &Uri::parse(contact).unwrap())
    }

    #[test]
    fn via_or_contact_that_is_not_the_source_means_nat() {
        let udp = Transport::Udp;
        // Behind a NAT: private Via and Contact, public source.
        assert!(check(
            "192.168.1.2:5060",
            "sip:1001@192.168.1.2:5060",
            "198.18.0.2:31000",
            udp
        ));
        // A NAT that kept the port but not the address.
        assert!(check(
            "100.64.0.9:5060",
            "sip:1001@100.64.0.9",
            "198.18.0.2:5060",
            udp
        ));
        // A STUN-aware phone wrote its public address but the NAT moved the port.
        assert!(check(
            "198.18.0.2:5060",
            "sip:1001@198.18.0.2:5060",
            "198.18.0.2:31000",
            udp
        ));
        // A Contact on a private address the Via does not show.
        assert!(check(
            "198.18.0.2:5060",
            "sip:1001@[fd00::5]:5060",
            "198.18.0.2:5060",
            udp
        ));
        // Not behind a NAT: all the same address, public or on the proxy's LAN.
        assert!(!check(
            "198.18.0.2:5062",
            "sip:1001@198.18.0.2:5062",
            "198.18.0.2:5062",
            udp
        ));
        assert!(!check(
            "10.1.1.5",
            "sip:1001@10.1.1.5",
            "10.1.1.5:5060",
            udp
        ));
        // TCP from an ephemeral port: the port says nothing.
        assert!(!check(
            "198.18.0.2:5060",
            "sip:1001@198.18.0.2;transport=tcp",
            "198.18.0.2:40312",
            Transport::Tcp
        ));
        // Host names prove nothing.
        assert!(!check(
            "phone.example.com",
            "sip:1001@phone.example.com",
            "198.18.0.2:5060",
            udp
        ));
    }
}
