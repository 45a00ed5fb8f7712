//! The box's own INVITEs: the request a `bridge` sends (`new_invite`), and
//! a scripted outbound call ([`crate::SimHandle::sip_call`]) that sends
//! one to the proxy with no caller behind it, as a box dialling a carrier
//! number from a script would. Final statuses of the box's INVITEs are
//! recorded for [`crate::SimHandle::sip_final`].

use std::net::SocketAddr;
use std::sync::Arc;

use locus_proxy::sip::{Headers, SipMessage, Uri};

use super::dialog::{Dialog, Phase, Role};
use super::endpoint::Endpoint;
use super::{timers, wire};

/// A new INVITE of the box and the dialog fields it sets.
pub(super) struct NewInvite {
    pub invite: SipMessage,
    pub call_id: String,
    pub tag: String,
    pub ours: String,
    pub theirs: String,
}

impl Endpoint {
    /// INVITE `ruri` from `caller` to `ext` (new Call-ID and tag, the box's
    /// SDP), with `routes` as Route headers.
    pub(super) fn new_invite(
        &self,
        caller: &str,
        ext: &str,
        ruri: Uri,
        routes: &[String],
    ) -> NewInvite {
        let domain = self.domain();
        let call_id = format!("{}@{}", wire::token(), self.local.ip());
        let tag = wire::token();
        let ours = format!("\"Extension {caller}\" <sip:{caller}@{domain}>;tag={tag}");
        let theirs = format!("<sip:{ext}@{domain}>");
        let mut h = Headers::default();
        h.push(
            "Via",
            &format!("SIP/2.0/UDP {};branch={};rport", self.local, wire::branch()),
        );
        h.push("Max-Forwards", "70");
        for r in routes {
            h.push("Route", r);
        }
        h.push("From", &ours);
        h.push("To", &theirs);
        h.push("Call-ID", &call_id);
        h.push("CSeq", "1 INVITE");
        h.push("Contact", &self.contact("mod_sofia"));
        h.push("User-Agent", wire::AGENT);
        h.push("Allow", wire::ALLOW);
        let session = rand::random::<u16>().into();
        let invite = wire::request("INVITE", ruri, h, Some(crate::sofia::local_sdp(session)));
        NewInvite {
            invite,
            call_id,
            tag,
            ours,
            theirs,
        }
    }

    /// Sends INVITE `sip:to@domain` from `from` to the proxy, with no
    /// caller's leg and no ESL events; a 2xx is ACKed and, unless `held`,
    /// ended with a BYE at once. `None` without a proxy or when `to` makes
    /// no URI.
    pub(crate) async fn call_out(
        self: &Arc<Self>,
        from: &str,
        to: &str,
        held: bool,
    ) -> Option<String> {
        let dest: SocketAddr = self.proxy?;
        let ruri = Uri::parse(&format!("sip:{to}@{}", self.domain())).ok()?;
        let n = self.new_invite(from, to, ruri, &[]);
        let bytes = n.invite.to_bytes();
        self.state().dialogs.insert(
            n.call_id.clone(),
            Dialog {
                role: Role::Uac,
                phase: Phase::Early,
                invite: n.invite,
                local_tag: n.tag,
                ours: n.ours,
                theirs: n.theirs,
                target: None,
                routes: vec![],
                dest,
                cseq: 1,
                uuid: None,
                partner: None,
                last: None,
                acked: false,
                bye_after_ack: false,
                bridge: None,
                rang: false,
                reinvite: None,
                held,
            },
        );
        timers::retransmit_invite(self, n.call_id.clone(), bytes.clone(), dest);
        self.send_all(vec![(bytes, dest)]).await;
        Some(n.call_id)
    }
}
