//! Requests the proxy builds or rewrites: route processing of a received
//! request (RFC 3261 16.4), a branch of a forwarded request (16.6), and
//! the CANCEL (9.1) and non-2xx ACK (17.1.1.3) a client transaction sends.

use bytes::Bytes;

use super::addr::Me;
use super::keys::FlowKeys;
use super::router::{Flow, RouteMark};
use crate::sip::{Headers, NameAddr, SipError, SipMessage, StartLine, Uri};

/// Most of our own Route entries popped from one request (double
/// Record-Route gives two; more is a loop or garbage).
const MAX_OWN_ROUTES: usize = 4;

/// Replaces the Request-URI.
pub fn set_ruri(req: &mut SipMessage, new: Uri) {
    if let StartLine::Request { uri, .. } = &mut req.start {
        *uri = new;
    }
}

/// Removes and returns the last Route value.
fn pop_last_route(req: &mut SipMessage) -> Option<String> {
    let at = req
        .headers
        .0
        .iter()
        .rposition(|h| crate::sip::header::same_name(&h.name, "Route"))?;
    let mut values: Vec<String> = crate::sip::header::split_list(&req.headers.0[at].value)
        .into_iter()
        .map(str::to_string)
        .collect();
    let last = values.pop();
    if values.is_empty() {
        req.headers.0.remove(at);
    } else {
        req.headers.0[at].value = values.join(", ");
    }
    last
}

/// What route processing found in a received request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Routed {
    /// The flow named by the last popped Route's `flow=` (signature
    /// checked) when no Route remains: a Path of ours pointing at a
    /// phone's connection.
    pub flow: Option<Flow>,
    /// The top Route on arrival.
    pub mark: RouteMark,
    /// Routes left after ours were popped.
    pub remaining: bool,
    /// A Route of ours carried a flow token or `lsig=` whose signature
    /// does not hold (tampered, another connection's, an unknown secret).
    pub forged: bool,
}

/// RFC 3261 16.4 on a received request: a strict router before us put our
/// URI in the R-URI (take the last Route as R-URI instead); then pop every
/// top Route that is ours, checking the signatures it carries (`keys`).
///
/// A flow token naming the request's own sender (`from`: same address and
/// transport) is the sender's side of our Record-Route: the request goes
/// away from that flow, by its R-URI (RFC 5626 5.3), so the token is not
/// followed (nor its signature computed).
pub fn loose_route(
    req: &mut SipMessage,
    me: &Me,
    keys: &FlowKeys,
    from: &Flow,
) -> Result<Routed, SipError> {
    let local = from.local;
    let has_route = req.headers.get("Route").is_some();
    if has_route
        && req.request_uri().is_some_and(|u| me.is_ours_uri(u))
        && let Some(last) = pop_last_route(req)
    {
        set_ruri(req, NameAddr::parse(&last)?.uri);
    }
    let call_id = req.call_id().unwrap_or_default().to_string();
    let mut routed = Routed {
        flow: None,
        mark: if has_route {
            RouteMark::Foreign
        } else {
            RouteMark::None
        },
        remaining: false,
        forged: false,
    };
    for i in 0..MAX_OWN_ROUTES {
        let Some(top) = req
            .headers
            .get_all("Route")
            .first()
            .map(|v| NameAddr::parse(v))
        else {
            break;
        };
        let top = top?;
        if !me.is_ours_uri(&top.uri) {
            break;
        }
        req.pop_route();
        let mut signed = false;
        routed.flow = None;
        if let Some(t) = top.uri.params.get("flow").flatten()
            && !names_sender(t, from)
        {
            match keys.open(t, local) {
                Ok(f) => {
                    routed.flow = Some(f);
                    signed = true;
                }
                Err(_) => routed.forged = true,
            }
        }
        if let Some(sig) = top.uri.params.get("lsig").flatten() {
            if keys.check_record_route(&call_id, sig) {
                signed = true;
            } else {
                routed.forged = true;
            }
        }
        if i == 0 {
            routed.mark = if signed {
                RouteMark::Signed
            } else {
                RouteMark::Ours
            };
        }
    }
    if req.headers.get("Route").is_some() {
        routed.flow = None;
        routed.remaining = true;
    }
    Ok(routed)
}

/// Whether flow token `token` names `from`'s sender (address and
/// transport; a TCP phone may have reconnected since).
fn names_sender(token: &str, from: &Flow) -> bool {
    let body = token.rsplit_once('~').map_or(token, |(b, _)| b);
    Flow::from_token(body, from.local)
        .is_some_and(|f| f.source == from.source && f.transport == from.transport)
}

/// The next hop of a request forwarded by its Route set or R-URI: the top
/// Route's URI when present, else the R-URI.
pub fn next_hop(req: &SipMessage) -> Result<Option<Uri>, SipError> {
    if let Some(r) = req.headers.get_all("Route").first() {
        return Ok(Some(NameAddr::parse(r)?.uri));
    }
    Ok(req.request_uri().cloned())
}

/// Copies the lines of the named headers from `from` into `to`, in order.
fn copy(from: &Headers, to: &mut Headers, names: &[&str]) {
    for h in &from.0 {
        if names
            .iter()
            .any(|n| crate::sip::header::same_name(&h.name, n))
        {
            to.push(&h.name, &h.value);
        }
    }
}

/// A request sharing `req`'s R-URI, top Via, Route set, From, Call-ID and
/// CSeq number, with `method` (CANCEL, non-2xx ACK).
fn hop_request(req: &SipMessage, method: &str, to: &str) -> SipMessage {
    let mut headers = Headers::default();
    if let Some(v) = req.vias().first() {
        headers.push("Via", v);
    }
    copy(&req.headers, &mut headers, &["Route", "From"]);
    headers.push("To", to);
    copy(&req.headers, &mut headers, &["Call-ID"]);
    let n = req.cseq().map(|(n, _)| n).unwrap_or(1);
    headers.push("CSeq", &format!("{n} {method}"));
    headers.push("Max-Forwards", "70");
    headers.push("Content-Length", "0");
    let uri = req.request_uri().cloned().unwrap_or_else(|| Uri {
        scheme: crate::sip::Scheme::Sip,
        user: None,
        host: "invalid".into(),
        port: None,
        params: Default::default(),
        headers: None,
    });
    SipMessage {
        start: StartLine::Request {
            method: method.to_string(),
            uri,
        },
        headers,
        body: Bytes::new(),
    }
}

/// CANCEL for a forwarded INVITE (RFC 3261 9.1: same R-URI, top Via, To,
/// Call-ID, CSeq number, Route set).
pub fn cancel_for(req: &SipMessage) -> SipMessage {
    hop_request(req, "CANCEL", req.headers.get("To").unwrap_or_default())
}

/// ACK for a non-2xx final response to a forwarded INVITE (RFC 3261
/// 17.1.1.3: To from the response, with its tag).
pub fn ack_for(req: &SipMessage, resp: &SipMessage) -> SipMessage {
    let to = resp
        .headers
        .get("To")
        .or_else(|| req.headers.get("To"))
        .unwrap_or_default();
    hop_request(req, "ACK", to)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    /// A request from a box at 10.0.0.5 arriving at `local`.
    fn from_box(local: std::net::SocketAddr) -> Flow {
        Flow {
            source: "10.0.0.5:5060".parse().unwrap(),
            transport: crate::sip::Transport::Udp,
            conn: None,
            local,
        }
    }

    fn me() -> Me {
        Me::new(vec!["127.0.0.1:5070".parse().unwrap()], vec![], None)
    }

    fn keys() -> FlowKeys {
        FlowKeys::new(b"0123456789abcdef", None)
    }

    fn parse(s: &str) -> SipMessage {
        SipMessage::parse(s.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn pops_our_routes_and_reads_the_flow_token() {
        let local = "127.0.0.1:5070".parse().unwrap();
        let mut r = parse(
            "BYE sip:a@10.0.0.9 SIP/2.0\nRoute: <sip:127.0.0.1:5070;lr>, <sip:10.0.0.5;lr>\n\n",
        );
        let routed = loose_route(&mut r, &me(), &keys(), &from_box(local)).unwrap();
        assert_eq!((routed.flow, routed.mark), (None, RouteMark::Ours));
        assert!(routed.remaining && !routed.forged);
        assert_eq!(r.headers.get_all("Route"), vec!["<sip:10.0.0.5;lr>"]);
        assert_eq!(next_hop(&r).unwrap().unwrap().host, "10.0.0.5");

        let flow = Flow {
            source: "192.0.2.1:4000".parse().unwrap(),
            transport: crate::sip::Transport::Udp,
            conn: None,
            local,
        };
        let route = format!(
            "Route: <sip:127.0.0.1:5070;lr;flow={}>",
            keys().token(&flow)
        );
        let mut r = parse(&format!("INVITE sip:a@10.0.0.9 SIP/2.0\n{route}\n\n"));
        let routed = loose_route(&mut r, &me(), &keys(), &from_box(local)).unwrap();
        assert_eq!(routed.flow, Some(flow));
        assert_eq!(routed.mark, RouteMark::Signed);
        assert!(r.headers.get("Route").is_none());
        // The plain token of old, or one signed under another secret: forged.
        for forged in [
            "u~192.0.2.1:4000~0".to_string(),
            FlowKeys::new(b"someone else's!!", None).token(&flow),
        ] {
            let mut r = parse(&format!(
                "INVITE sip:a@10.0.0.9 SIP/2.0\nRoute: <sip:127.0.0.1:5070;lr;flow={forged}>\n\n"
            ));
            let routed = loose_route(&mut r, &me(), &keys(), &from_box(local)).unwrap();
            assert!(routed.forged && routed.flow.is_none(), "{forged}");
        }
    }

    #[test]
    fn a_token_naming_the_sender_is_its_own_side_of_the_record_route() {
        let local = "127.0.0.1:5070".parse().unwrap();
        let phone = Flow {
            source: "192.0.2.1:4000".parse().unwrap(),
            transport: crate::sip::Transport::Udp,
            conn: None,
            local,
        };
        let sig = keys().record_route_sig("c1");
        let rr = format!(
            "Route: <sip:127.0.0.1:5070;lr;flow={};lsig={sig}>",
            keys().token(&phone)
        );
        let bye = format!("BYE sip:b@10.0.0.5 SIP/2.0\nCall-ID: c1\n{rr}\n\n");
        // From the box: to the phone's flow.
        let mut r = parse(&bye);
        let routed = loose_route(&mut r, &me(), &keys(), &from_box(local)).unwrap();
        assert_eq!(routed.flow, Some(phone));
        // From the phone itself (even with a bad token signature): by its
        // R-URI, signed by lsig alone.
        let mut r = parse(&bye);
        let routed = loose_route(&mut r, &me(), &keys(), &phone).unwrap();
        assert_eq!((routed.flow, routed.mark), (None, RouteMark::Signed));
        assert!(!routed.forged);
        let mut r = parse(&bye.replace(&keys().token(&phone), "u~192.0.2.1:4000~0~00"));
        let routed = loose_route(&mut r, &me(), &keys(), &phone).unwrap();
        assert_eq!((routed.flow, routed.forged), (None, false));
        // Over TCP from the same address it is another flow.
        let tcp = Flow {
            transport: crate::sip::Transport::Tcp,
            ..phone
        };
        let mut r = parse(&bye);
        let routed = loose_route(&mut r, &me(), &keys(), &tcp).unwrap();
        assert_eq!(routed.flow, Some(phone));
    }

    #[test]
    fn strict_router_before_us_gets_the_last_route_as_ruri() {
        let local = "127.0.0.1:5070".parse().unwrap();
        let mut r = parse(
            "BYE sip:127.0.0.1:5070 SIP/2.0\nRoute: <sip:10.0.0.5;lr>\nRoute: <sip:b@10.0.0.9>\n\n",
        );
        loose_route(&mut r, &me(), &keys(), &from_box(local)).unwrap();
        assert_eq!(r.request_uri().unwrap().to_string(), "sip:b@10.0.0.9");
        assert_eq!(r.headers.get_all("Route"), vec!["<sip:10.0.0.5;lr>"]);
    }

    #[test]
    fn cancel_and_ack_copy_the_transaction_identity() {
        let inv = parse(
            "INVITE sip:b@10.0.0.9 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-lp1\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\nRoute: <sip:10.0.0.5;lr>\nFrom: <sip:a@x>;tag=1\nTo: <sip:b@x>\nCall-ID: c\nCSeq: 7 INVITE\nContent-Length: 0\n\n",
        );
        let c = cancel_for(&inv);
        assert_eq!(c.method(), Some("CANCEL"));
        assert_eq!(
            c.vias(),
            vec!["SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-lp1"]
        );
        assert_eq!(c.cseq().unwrap(), (7, "CANCEL"));
        assert_eq!(c.headers.get("Route"), Some("<sip:10.0.0.5;lr>"));
        assert_eq!(c.request_uri(), inv.request_uri());
        let resp = parse("SIP/2.0 486 Busy\nTo: <sip:b@x>;tag=zz\n\n");
        let a = ack_for(&inv, &resp);
        assert_eq!(a.to().unwrap().tag(), Some("zz"));
        assert_eq!(a.cseq().unwrap(), (7, "ACK"));
    }
}
