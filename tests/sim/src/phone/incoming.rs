//! [`IncomingCall`]: an INVITE the phone received (already sent 100):
//! ring it, answer it (200 retransmitted until the ACK, RFC 3261 13.3.1.4)
//! or see the caller cancel it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use locus_proxy::sip::SipMessage;

use super::PhoneError;
use super::call::{Dialog, PhoneCall};
use super::ua::{Inner, T1, T2};

/// An INVITE the phone received, not answered yet.
#[derive(Debug)]
pub struct IncomingCall {
    inner: Arc<Inner>,
    invite: SipMessage,
    source: SocketAddr,
    tag: String,
    timeout: Duration,
    /// Call-ID of the INVITE.
    pub call_id: String,
}

impl IncomingCall {
    pub(super) fn new(inner: Arc<Inner>, call_id: &str, timeout: Duration) -> Option<Self> {
        let (invite, source, tag) = {
            let st = inner.state();
            let u = st.uas.get(call_id)?;
            (u.invite.clone(), u.source, u.tag.clone())
        };
        Some(Self {
            inner,
            invite,
            source,
            tag,
            timeout,
            call_id: call_id.to_owned(),
        })
    }

    /// Where the INVITE came from (the proxy that delivered it).
    pub fn source(&self) -> SocketAddr {
        self.source
    }

    /// The caller's user (From).
    pub fn from_user(&self) -> Option<String> {
        self.invite
            .from()
            .ok()
            .and_then(|f| f.uri.user_name().map(str::to_owned))
    }

    /// A dialog-creating response: Record-Route copied (12.1.1), Contact.
    fn response(&self, status: u16, reason: &str, body: Option<String>) -> SipMessage {
        let mut r = self.invite.reply(status, reason, Some(&self.tag));
        for rr in self.invite.headers.get_all("Record-Route") {
            r.headers.push("Record-Route", rr);
        }
        r.headers.push("Contact", &self.inner.contact());
        if let Some(b) = body {
            r.headers.push("Content-Type", "application/sdp");
            r.set_body(Bytes::from(b));
        }
        r
    }

    /// Sends `r` as the INVITE's latest response unless it was cancelled.
    async fn respond(&self, r: SipMessage, answered: bool) -> Result<Bytes, PhoneError> {
        let bytes = r.to_bytes();
        {
            let mut st = self.inner.state();
            let u = st
                .uas
                .get_mut(&self.call_id)
                .ok_or(PhoneError::NoDialog("the INVITE is gone"))?;
            if u.cancelled {
                return Err(PhoneError::NoDialog("the caller cancelled"));
            }
            u.last = Some(bytes.clone());
            u.answered |= answered;
        }
        self.inner.send(&bytes, self.source).await;
        Ok(bytes)
    }

    /// 180 Ringing.
    pub async fn ring(&self) -> Result<(), PhoneError> {
        self.respond(self.response(180, "Ringing", None), false)
            .await
            .map(|_| ())
    }

    /// Waits up to `wait` for the caller's CANCEL; true when it came.
    pub async fn wait_cancelled(&self, wait: Duration) -> bool {
        let id = self.call_id.clone();
        self.inner
            .until(wait, |st| st.uas.get(&id).is_some_and(|u| u.cancelled))
            .await
    }

    /// 200 OK with SDP, retransmitted (T1 doubling up to T2) until the ACK
    /// arrives within the phone's timeout.
    pub async fn answer(self) -> Result<PhoneCall, PhoneError> {
        let body = self.inner.sdp();
        let ok = self
            .respond(self.response(200, "OK", Some(body)), true)
            .await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut every = T1;
        let id = self.call_id.clone();
        // Bounded by the deadline.
        loop {
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(PhoneError::Timeout {
                    method: "the ACK of a 200".into(),
                    wait: self.timeout,
                });
            }
            let slice = every.min(deadline - now);
            if self
                .inner
                .until(slice, |st| st.uas.get(&id).is_some_and(|u| u.acked))
                .await
            {
                break;
            }
            self.inner.send(&ok, self.source).await;
            every = (every * 2).min(T2);
        }
        let target = self
            .invite
            .contacts()
            .ok()
            .and_then(|c| c.into_iter().next())
            .map(|c| c.uri)
            .ok_or(PhoneError::NoDialog("the INVITE had no Contact"))?;
        let to = self.invite.headers.get("To").unwrap_or_default();
        Ok(PhoneCall {
            status: 200,
            provisional: vec![180],
            call_id: self.call_id.clone(),
            dialog: Some(Dialog {
                local: format!("{to};tag={}", self.tag),
                remote: self
                    .invite
                    .headers
                    .get("From")
                    .unwrap_or_default()
                    .to_owned(),
                target,
                // The UAS keeps the Record-Route order (12.1.1).
                routes: self
                    .invite
                    .headers
                    .get_all("Record-Route")
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                cseq: 0,
            }),
            inner: self.inner.clone(),
            timeout: self.timeout,
        })
    }
}
