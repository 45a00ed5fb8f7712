//! [`PhoneCall`]: a call of the phone and its dialog, from either side
//! (BYE via its route set, RFC 3261 12.2), and `invite`, the client side
//! of a call: INVITE, digest retry, ACK.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use locus_proxy::sip::{SipMessage, Uri};

use super::ua::{Inner, addr_of, first_hop, token};
use super::{Phone, PhoneError};

/// The dialog of an established call.
#[derive(Clone, Debug)]
pub(super) struct Dialog {
    /// Our From (tag included) for in-dialog requests.
    pub local: String,
    /// Their To (tag included).
    pub remote: String,
    /// Their Contact.
    pub target: Uri,
    /// Route set, in request order.
    pub routes: Vec<String>,
    /// Our last CSeq.
    pub cseq: u32,
}

/// A call of the phone: the final status and, when answered, the dialog.
#[derive(Debug)]
pub struct PhoneCall {
    /// Final status of the INVITE (200 for an answered incoming call).
    pub status: u16,
    /// Provisional statuses seen before it (outgoing calls).
    pub provisional: Vec<u16>,
    /// Call-ID of the dialog.
    pub call_id: String,
    pub(super) dialog: Option<Dialog>,
    pub(super) inner: Arc<Inner>,
    pub(super) timeout: Duration,
}

impl PhoneCall {
    /// Whether the call is answered and neither side hung up yet.
    pub fn is_up(&self) -> bool {
        self.dialog.is_some() && !self.inner.state().ended.contains(&self.call_id)
    }

    /// Waits up to `wait` for the far end's BYE; true when it came.
    pub async fn wait_ended(&self, wait: Duration) -> bool {
        let id = self.call_id.clone();
        self.inner.until(wait, |st| st.ended.contains(&id)).await
    }

    /// The live dialog, or why there is none.
    fn live_dialog(&mut self) -> Result<&mut Dialog, PhoneError> {
        if self.inner.state().ended.contains(&self.call_id) {
            self.dialog = None;
            return Err(PhoneError::NoDialog("the far end hung up"));
        }
        self.dialog
            .as_mut()
            .ok_or(PhoneError::NoDialog("the call was not answered"))
    }

    /// An in-dialog request through the route set (next CSeq; `sdp` as
    /// body with our Contact, for a re-INVITE), its final response, and
    /// the ACK of a 2xx to a re-INVITE.
    async fn in_dialog(&mut self, method: &str, sdp: Option<String>) -> Result<u16, PhoneError> {
        let (inner, call_id, wait) = (self.inner.clone(), self.call_id.clone(), self.timeout);
        let d = self.live_dialog()?;
        d.cseq += 1;
        let routes: Vec<(&str, String)> = d.routes.iter().map(|r| ("Route", r.clone())).collect();
        let mut h = routes.clone();
        h.extend([
            ("From", d.local.clone()),
            ("To", d.remote.clone()),
            ("Call-ID", call_id.clone()),
            ("CSeq", format!("{} {method}", d.cseq)),
        ]);
        if sdp.is_some() {
            h.push(("Contact", inner.contact()));
        }
        let req = inner.request(method, d.target.clone(), &h, sdp);
        let to = next_hop(&d.routes, &d.target, inner.proxy);
        let (_, resp) = inner.transact(&req, to, wait).await?;
        let status = resp.status().unwrap_or_default();
        if method == "INVITE" && (200..300).contains(&status) {
            let mut h = routes;
            h.extend([
                ("From", d.local.clone()),
                ("To", d.remote.clone()),
                ("Call-ID", call_id),
                ("CSeq", format!("{} ACK", d.cseq)),
            ]);
            let ack = inner.request("ACK", d.target.clone(), &h, None).to_bytes();
            inner.send(&ack, to).await;
        }
        Ok(status)
    }

    /// Re-INVITEs the far end through the route set (a new offer, as a
    /// hold or a session refresh does) and ACKs a 2xx; returns the status.
    pub async fn reinvite(&mut self) -> Result<u16, PhoneError> {
        let sdp = self.inner.sdp();
        self.in_dialog("INVITE", Some(sdp)).await
    }

    /// Hangs up: BYE through the dialog's route set; returns its status.
    pub async fn hangup(&mut self) -> Result<u16, PhoneError> {
        let status = self.in_dialog("BYE", None).await?;
        self.dialog = None;
        self.inner.state().ended.insert(self.call_id.clone());
        Ok(status)
    }
}

/// Where an in-dialog request goes: the first route, else the target.
fn next_hop(routes: &[String], target: &Uri, fallback: SocketAddr) -> SocketAddr {
    first_hop(routes)
        .or_else(|| addr_of(target))
        .unwrap_or(fallback)
}

/// The client side of a call: INVITE (answering one 401/407), ACK.
pub(super) async fn invite(
    inner: Arc<Inner>,
    ruri: Uri,
    wait: Duration,
    phone: &Phone,
) -> Result<PhoneCall, PhoneError> {
    let call_id = format!("{}@{}", token(), inner.me().ip());
    let from = format!("<sip:{}@{}>;tag={}", inner.user, inner.domain, token());
    let to = format!("<{ruri}>");
    let contact = inner.contact();
    let offer = inner.sdp();
    let mut auth: Option<(&str, String)> = None;
    for cseq in 1..=2u32 {
        let mut h = vec![
            ("From", from.clone()),
            ("To", to.clone()),
            ("Call-ID", call_id.clone()),
            ("CSeq", format!("{cseq} INVITE")),
            ("Contact", contact.clone()),
        ];
        h.extend(auth.take());
        let req = inner.request("INVITE", ruri.clone(), &h, Some(offer.clone()));
        let (provisional, resp) = match inner.transact(&req, inner.proxy, wait).await {
            Ok(r) => r,
            Err(e) => {
                // Give up cleanly: the far end stops ringing (RFC 3261 9.1).
                let cancel = hop_by_hop(&req, "CANCEL", None);
                inner.send(&cancel.to_bytes(), inner.proxy).await;
                return Err(e);
            }
        };
        let status = resp.status().unwrap_or_default();
        if !(200..300).contains(&status) {
            // ACK for a non-2xx goes hop by hop, same branch (17.1.1.3).
            let ack = hop_by_hop(&req, "ACK", resp.headers.get("To"));
            inner.send(&ack.to_bytes(), inner.proxy).await;
            match phone.credentials(&resp, "INVITE", &ruri)? {
                Some(a) if cseq == 1 => {
                    auth = Some(a);
                    continue;
                }
                _ => {}
            }
            return Ok(PhoneCall {
                status,
                provisional,
                call_id,
                dialog: None,
                inner,
                timeout: wait,
            });
        }
        // The route set is the Record-Route reversed (12.1.2).
        let mut routes: Vec<String> = resp
            .headers
            .get_all("Record-Route")
            .into_iter()
            .map(str::to_owned)
            .collect();
        routes.reverse();
        let target = resp
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.uri)
            .unwrap_or_else(|| ruri.clone());
        let d = Dialog {
            local: from.clone(),
            remote: resp.headers.get("To").unwrap_or_default().to_owned(),
            target,
            routes,
            cseq,
        };
        let mut h: Vec<(&str, String)> = d.routes.iter().map(|r| ("Route", r.clone())).collect();
        h.extend([
            ("From", d.local.clone()),
            ("To", d.remote.clone()),
            ("Call-ID", call_id.clone()),
            ("CSeq", format!("{cseq} ACK")),
        ]);
        let ack = inner.request("ACK", d.target.clone(), &h, None).to_bytes();
        let hop = next_hop(&d.routes, &d.target, inner.proxy);
        inner
            .state()
            .acks
            .insert(call_id.clone(), (ack.clone(), hop));
        inner.send(&ack, hop).await;
        return Ok(PhoneCall {
            status,
            provisional,
            call_id,
            dialog: Some(d),
            inner,
            timeout: wait,
        });
    }
    Err(PhoneError::Build("unreachable: two INVITE rounds"))
}

/// CANCEL or non-2xx ACK of `invite` (RFC 3261 9.1, 17.1.1.3): its Via,
/// Route, From, Call-ID and CSeq number; To from the response for an ACK.
fn hop_by_hop(invite: &SipMessage, method: &str, to: Option<&str>) -> SipMessage {
    let mut m = invite.clone();
    if let locus_proxy::sip::StartLine::Request { method: m_, .. } = &mut m.start {
        *m_ = method.to_owned();
    }
    let n = invite.cseq().map_or(1, |c| c.0);
    m.headers.set("CSeq", &format!("{n} {method}"));
    if let Some(to) = to {
        m.headers.set("To", to);
    }
    m.headers.remove_all("Contact");
    m.headers.remove_all("Content-Type");
    m.set_body(Bytes::new());
    m
}
