//! Releasing a 2xx nobody upstream will take: a branch we gave up on (timed
//! out and failed over, or CANCELled because another branch won) answers
//! 200 after the caller already has its final response. Relaying it would
//! give the caller a second dialog beside the one it accepted (or a 200
//! after our 408), so the proxy plays the caller's part for that dialog:
//! ACK (RFC 3261 13.2.2.4) and BYE (15.1.1) at once.
//!
//! One small task per released 2xx. It takes the branch's id over in the
//! client map, so the box's 2xx retransmissions (until our ACK reaches it)
//! are ACKed again instead of being relayed as strays, retransmits the BYE
//! over UDP (Timer E) until it is answered, and ends after 64*T1.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::addr::{Hop, Me};
use super::core::Core;
use super::txn::Event;
use crate::sip::{Headers, NameAddr, SipMessage, StartLine, Transport, Uri};
use locus_schema::lock;

/// The ACK and the BYE for `resp`, a 2xx to `invite` (as we forwarded it).
struct Pair {
    ack: SipMessage,
    bye: SipMessage,
}

/// The route set towards the UAS (RFC 3261 12.1.2): the 2xx's Record-Route
/// reversed, from the entry after our own (a double Record-Route puts two
/// of ours there). Without one of ours (an in-dialog request, which we do
/// not record), the Route set the INVITE was forwarded with.
fn route_set(me: &Me, invite: &SipMessage, resp: &SipMessage) -> Vec<String> {
    let mut rr: Vec<&str> = resp.headers.get_all("Record-Route");
    rr.reverse();
    let ours = |v: &&str| NameAddr::parse(v).is_ok_and(|n| me.is_ours_uri(&n.uri));
    match rr.iter().rposition(ours) {
        Some(at) => rr[at + 1..].iter().map(|v| v.to_string()).collect(),
        None => invite
            .headers
            .get_all("Route")
            .into_iter()
            .map(str::to_string)
            .collect(),
    }
}

/// One in-dialog request of the dialog `resp` opened: R-URI its Contact
/// (the INVITE's R-URI without one), From from the INVITE, To (with the
/// box's tag) from the 2xx, CSeq `n method`.
fn in_dialog(
    invite: &SipMessage,
    resp: &SipMessage,
    route: &[String],
    method: &str,
    n: u32,
) -> Option<SipMessage> {
    let contact: Option<Uri> = resp
        .headers
        .first("Contact")
        .and_then(|c| NameAddr::parse(c).ok())
        .map(|c| c.uri);
    let uri = contact.or_else(|| invite.request_uri().cloned())?;
    let mut headers = Headers::default();
    for r in route {
        headers.push("Route", r);
    }
    for (name, from) in [("From", invite), ("To", resp), ("Call-ID", resp)] {
        if let Some(v) = from.headers.get(name) {
            headers.push(name, v);
        }
    }
    headers.push("CSeq", &format!("{n} {method}"));
    headers.push("Max-Forwards", "70");
    headers.push("Content-Length", "0");
    Some(SipMessage {
        start: StartLine::Request {
            method: method.to_string(),
            uri,
        },
        headers,
        body: Bytes::new(),
    })
}

impl Pair {
    fn new(me: &Me, invite: &SipMessage, resp: &SipMessage) -> Option<Pair> {
        let route = route_set(me, invite, resp);
        let n = invite.cseq().map(|(n, _)| n).unwrap_or(1);
        Some(Pair {
            ack: in_dialog(invite, resp, &route, "ACK", n)?,
            bye: in_dialog(invite, resp, &route, "BYE", n.wrapping_add(1))?,
        })
    }
}

/// Releases `resp`, a 2xx to `invite` (as forwarded over `hop` with Via
/// branch `branch`): ACK and BYE now, on `hop` (where the INVITE went: the
/// box, the phone's flow, or the next proxy, which routes by the Route set
/// and the Contact), then a task that absorbs the rest.
pub(crate) fn spawn(
    core: &Arc<Core>,
    invite: &SipMessage,
    resp: &SipMessage,
    hop: Hop,
    branch: &str,
    lh: u64,
    shutdown: &CancellationToken,
) {
    let Some(Pair { mut ack, mut bye }) = Pair::new(&core.me, invite, resp) else {
        core.stats
            .drop_one(crate::proxy::stats::DropReason::Malformed);
        return;
    };
    let bye_id = core.ids.next(lh, "");
    ack.headers
        .prepend("Via", &core.me.via(&hop, &core.ids.next(lh, "")));
    bye.headers.prepend("Via", &core.me.via(&hop, &bye_id));
    let (tx, rx) = mpsc::channel(16);
    {
        let mut clients = lock(&core.clients);
        clients.insert(branch.to_string(), tx.clone());
        clients.insert(bye_id.clone(), tx);
    }
    core.stats.release();
    tracing::info!(
        peer = %hop.addr,
        sip.call_id = resp.call_id().unwrap_or_default(),
        "proxy: late 2xx from a branch given up, sending ACK and BYE"
    );
    let task = Release {
        core: core.clone(),
        hop,
        ack: ack.to_bytes(),
        bye: bye.to_bytes(),
        ids: [branch.to_string(), bye_id],
    };
    tokio::spawn(task.run(rx, shutdown.clone()));
}

struct Release {
    core: Arc<Core>,
    hop: Hop,
    ack: Bytes,
    bye: Bytes,
    /// The INVITE branch and the BYE branch, in the client map.
    ids: [String; 2],
}

impl Release {
    async fn send(&self, bytes: Bytes, what: &'static str) {
        if let Err(e) = self.core.send(&self.hop, bytes).await {
            tracing::debug!(peer = %self.hop.addr, error = %e, what, "proxy: not sent");
        }
    }

    async fn run(self, mut rx: mpsc::Receiver<Event>, shutdown: CancellationToken) {
        let cfg = &self.core.cfg;
        let start = Instant::now();
        let end = start + cfg.t1 * 64;
        self.send(self.ack.clone(), "ACK").await;
        self.send(self.bye.clone(), "BYE").await;
        // Timer E, UDP only; stopped by the BYE's final response.
        let mut retrans: Option<(Instant, Duration)> =
            (self.hop.transport == Transport::Udp).then_some((start + cfg.t1, cfg.t1));
        loop {
            let wake = retrans.map_or(end, |r| r.0.min(end));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                ev = rx.recv() => match ev {
                    Some(Event::Response(r)) => match r.cseq().map(|(_, m)| m) {
                        Ok("INVITE") if r.status().is_some_and(|s| s < 300) => {
                            self.send(self.ack.clone(), "ACK").await;
                        }
                        Ok("BYE") if r.status().is_some_and(|s| s >= 200) => retrans = None,
                        _ => {}
                    },
                    Some(_) => {}
                    None => break,
                },
                _ = sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= end {
                        break;
                    }
                    if let Some((at, every)) = retrans
                        && now >= at
                    {
                        let every = (every * 2).min(cfg.t2);
                        retrans = Some((now + every, every));
                        self.send(self.bye.clone(), "BYE").await;
                    }
                }
            }
        }
        let mut clients = lock(&self.core.clients);
        for id in &self.ids {
            clients.remove(id);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn parse(s: &str) -> SipMessage {
        SipMessage::parse(s.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn ack_and_bye_follow_the_dialog_the_2xx_opened() {
        let me = Me::new(vec!["127.0.0.1:5070".parse().unwrap()], vec![], None);
        let invite = parse(
            "INVITE sip:1000@d.example.com SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-lp1\n\
             Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKa\nFrom: <sip:a@d.example.com>;tag=f1\n\
             To: <sip:1000@d.example.com>\nCall-ID: c1\nCSeq: 7 INVITE\nContent-Length: 0\n\n",
        );
        // The UAS echoes Record-Route: a proxy behind us on top, then our
        // double Record-Route, then the caller's side.
        let ok = parse(
            "SIP/2.0 200 OK\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-lp1\n\
             Record-Route: <sip:192.0.2.9;lr>, <sip:127.0.0.1:5070;lr;r2=on>\n\
             Record-Route: <sip:127.0.0.1:5071;transport=tcp;lr;r2=on>\n\
             Record-Route: <sip:10.0.0.7;lr>\n\
             From: <sip:a@d.example.com>;tag=f1\nTo: <sip:1000@d.example.com>;tag=box\n\
             Call-ID: c1\nCSeq: 7 INVITE\nContact: <sip:1000@10.0.0.5:5080>\nContent-Length: 0\n\n",
        );
        let me2 = Me::new(
            vec!["127.0.0.1:5070".parse().unwrap()],
            vec!["127.0.0.1:5071".parse().unwrap()],
            None,
        );
        let Pair { ack, bye } = Pair::new(&me2, &invite, &ok).unwrap();
        for (m, method, n) in [(&ack, "ACK", 7), (&bye, "BYE", 8)] {
            assert_eq!(m.method(), Some(method));
            assert_eq!(
                m.request_uri().unwrap().to_string(),
                "sip:1000@10.0.0.5:5080"
            );
            assert_eq!(m.headers.get_all("Route"), vec!["<sip:192.0.2.9;lr>"]);
            assert_eq!(m.from().unwrap().tag(), Some("f1"));
            assert_eq!(m.to().unwrap().tag(), Some("box"));
            assert_eq!(m.call_id().unwrap(), "c1");
            assert_eq!(m.cseq().unwrap(), (n, method));
            assert_eq!(m.content_length().unwrap(), Some(0));
        }
        // Not recorded by us (an in-dialog re-INVITE): the INVITE's own
        // Route set; no Contact: the INVITE's R-URI.
        let mut inv2 = invite.clone();
        inv2.headers.prepend("Route", "<sip:192.0.2.8;lr>");
        let bare = parse(
            "SIP/2.0 200 OK\nFrom: <sip:a@d.example.com>;tag=f1\nTo: <sip:1000@d.example.com>;tag=b\n\
             Call-ID: c1\nCSeq: 7 INVITE\n\n",
        );
        let Pair { bye, .. } = Pair::new(&me, &inv2, &bare).unwrap();
        assert_eq!(bye.headers.get_all("Route"), vec!["<sip:192.0.2.8;lr>"]);
        assert_eq!(
            bye.request_uri().unwrap().to_string(),
            "sip:1000@d.example.com"
        );
    }
}
