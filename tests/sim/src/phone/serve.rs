//! The phone's receiving side: the receive task, responses handed to the
//! waiting transaction (a retransmitted 2xx re-ACKed), and requests
//! answered at once: INVITE (100, queued for [`super::Phone::next_call`],
//! its retransmissions get the last response), ACK, BYE (200, or 481 for
//! an unknown dialog), CANCEL (200 and 487 while unanswered), anything
//! else 200, so the far end never retransmits into the void. OPTIONS
//! (keepalives) are logged; a silent phone answers nothing.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use locus_proxy::sip::{Datagram, SipMessage, parse_datagram};

use super::ua::{Inner, Uas, token};

impl Inner {
    fn on_datagram(&self, data: &[u8], src: SocketAddr) -> Vec<(Bytes, SocketAddr)> {
        let msg = match parse_datagram(data) {
            Ok(Datagram::Message(m)) => m,
            Ok(Datagram::KeepAlive) => return vec![],
            Err(e) => {
                tracing::debug!(peer = %src, error = %e, "phone: unparsable datagram");
                return vec![];
            }
        };
        if msg.method() == Some("OPTIONS") && msg.to().is_ok_and(|t| t.tag().is_none()) {
            let mut st = self.state();
            if st.options.len() < 10_000 {
                st.options.push((std::time::Instant::now(), src));
            }
        }
        if self.silent.load(std::sync::atomic::Ordering::Relaxed) {
            return vec![];
        }
        if msg.is_request() {
            return self.on_request(msg, src);
        }
        let branch = msg
            .top_via()
            .ok()
            .and_then(|v| v.branch().map(str::to_owned));
        let st = self.state();
        if let Some(tx) = branch.and_then(|b| st.waiters.get(&b)) {
            let _ = tx.send(msg);
            return vec![];
        }
        // A retransmitted 2xx after the transaction: the ACK was lost.
        let is_invite_ok = msg.cseq().is_ok_and(|c| c.1 == "INVITE")
            && msg.status().is_some_and(|s| (200..300).contains(&s));
        match msg.call_id().ok().and_then(|c| st.acks.get(c)) {
            Some(ack) if is_invite_ok => vec![ack.clone()],
            _ => vec![],
        }
    }

    fn on_request(&self, msg: SipMessage, src: SocketAddr) -> Vec<(Bytes, SocketAddr)> {
        let Ok(call_id) = msg.call_id().map(str::to_owned) else {
            return vec![];
        };
        let method = msg.method().unwrap_or_default().to_owned();
        let reply = |m: &SipMessage, status: u16, reason: &str| {
            let tag = (m.to().ok().and_then(|t| t.tag().map(str::to_owned))).unwrap_or_else(token);
            m.reply(status, reason, Some(&tag)).to_bytes()
        };
        let mut st = self.state();
        let out = match method.as_str() {
            // A re-INVITE in one of our dialogs (To tag, a new CSeq): 200
            // with our Contact and SDP; its ACK needs nothing.
            "INVITE" if is_reinvite(&st, &msg, &call_id) => {
                *st.reinvited.entry(call_id.clone()).or_default() += 1;
                let mut ok = msg.reply(200, "OK", None);
                ok.headers.push("Contact", &self.contact());
                ok.headers.push("Content-Type", "application/sdp");
                ok.set_body(Bytes::from(self.sdp()));
                vec![(ok.to_bytes(), src)]
            }
            "INVITE" => {
                if let Some(u) = st.uas.get(&call_id) {
                    return u.last.clone().map(|b| vec![(b, src)]).unwrap_or_default();
                }
                let trying = msg.reply(100, "Trying", None).to_bytes();
                st.uas.insert(
                    call_id.clone(),
                    Uas {
                        invite: msg,
                        source: src,
                        tag: token(),
                        last: Some(trying.clone()),
                        answered: false,
                        acked: false,
                        cancelled: false,
                    },
                );
                let _ = self.queue.send(call_id);
                vec![(trying, src)]
            }
            "ACK" => {
                if let Some(u) = st.uas.get_mut(&call_id) {
                    u.acked = true;
                }
                vec![]
            }
            "BYE" => {
                let known = st.uas.contains_key(&call_id) || st.acks.contains_key(&call_id);
                if known {
                    st.ended.insert(call_id);
                    vec![(reply(&msg, 200, "OK"), src)]
                } else {
                    vec![(reply(&msg, 481, "Call/Transaction Does Not Exist"), src)]
                }
            }
            "CANCEL" => match st.uas.get_mut(&call_id) {
                Some(u) => {
                    let mut out = vec![(reply(&msg, 200, "OK"), src)];
                    if !u.answered && !u.cancelled {
                        u.cancelled = true;
                        let r = u
                            .invite
                            .reply(487, "Request Terminated", Some(&u.tag))
                            .to_bytes();
                        u.last = Some(r.clone());
                        out.push((r, u.source));
                    }
                    out
                }
                None => vec![(reply(&msg, 481, "Call/Transaction Does Not Exist"), src)],
            },
            _ => vec![(reply(&msg, 200, "OK"), src)],
        };
        drop(st);
        self.changed.notify_waiters();
        out
    }
}

/// Whether `msg` (an INVITE) is a re-INVITE in a dialog of ours: it has a
/// To tag, and it is not the INVITE that created the call (nor its
/// retransmission).
fn is_reinvite(st: &super::ua::State, msg: &SipMessage, call_id: &str) -> bool {
    if !msg.to().is_ok_and(|t| t.tag().is_some()) {
        return false;
    }
    match st.uas.get(call_id) {
        Some(u) => u.invite.cseq().ok().map(|c| c.0) != msg.cseq().ok().map(|c| c.0),
        None => st.acks.contains_key(call_id),
    }
}

/// The receive task: runs until the phone is dropped.
pub(super) async fn recv_loop(inner: Arc<Inner>) {
    let mut buf = vec![0u8; 65_536];
    // Each round waits for one datagram or the stop.
    loop {
        let got = tokio::select! {
            biased;
            () = inner.stop.cancelled() => return,
            r = inner.sock.recv_from(&mut buf) => r,
        };
        match got {
            Ok((n, src)) => {
                let out = inner.on_datagram(&buf[..n], src);
                for (b, to) in out {
                    inner.send(&b, to).await;
                }
            }
            // ICMP port unreachable from an earlier send lands here on Linux.
            Err(e) => {
                tracing::debug!(error = %e, "phone receive error");
                tokio::task::yield_now().await;
            }
        }
    }
}
