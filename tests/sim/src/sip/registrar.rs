//! REGISTER as sofia answers it: 401 with a digest challenge, then with
//! the directory password 200 (Contact echoed with `;expires=`, `Expires`,
//! `Path` echoed per RFC 3327) and the ESL register scripts; a wrong
//! password 403. `Expires: 0` unregisters.

use std::net::SocketAddr;
use std::sync::Arc;

use locus_proxy::sip::SipMessage;

use super::auth::Verdict;
use super::endpoint::{Endpoint, Out, SipState};
use super::{SipBinding, wire};
use crate::scripts::register::{Binding, EXPIRES};

impl Endpoint {
    /// REGISTER from `src`: challenge, check, bind or unbind.
    pub(super) fn register(
        self: &Arc<Self>,
        st: &mut SipState,
        req: &SipMessage,
        src: SocketAddr,
    ) -> Out {
        let send = |m: SipMessage| vec![(m.to_bytes(), src)];
        let authorised = match self.authorise(st, req, &wire::token()) {
            Verdict::Authorised(u) => u,
            Verdict::Refused(r) => return send(r),
        };
        let user = req
            .to()
            .ok()
            .and_then(|t| t.uri.user_name().map(str::to_owned));
        let Some(user) = user else {
            tracing::debug!(peer = %src, sip.user = %authorised, "register without a To user");
            return send(wire::respond(req, 403, Some(&wire::token())));
        };
        let header_expires = req
            .headers
            .get("Expires")
            .and_then(|e| e.trim().parse::<u32>().ok());
        let contact = req.contacts().ok().and_then(|c| c.into_iter().next());
        let expires = contact
            .as_ref()
            .and_then(|c| c.params.get("expires").flatten())
            .and_then(|e| e.parse::<u32>().ok())
            .or(header_expires)
            .unwrap_or(EXPIRES);
        let call_id = req.call_id().unwrap_or_default().to_owned();
        let mut ok = wire::respond(req, 200, Some(&wire::token()));
        match contact.filter(|_| expires > 0) {
            Some(c) => {
                let path: Vec<String> = req
                    .headers
                    .get_all("Path")
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                let bind = Binding {
                    contact: c.uri.to_string(),
                    call_id,
                    ip: src.ip().to_string(),
                    port: src.port(),
                };
                if let Err(e) = self.shared.core().register_at(&user, expires, Some(&bind)) {
                    tracing::debug!(sip.user = %user, error = %e, "register script");
                }
                for p in &path {
                    ok.headers.push("Path", p);
                }
                ok.headers
                    .push("Contact", &format!("<{}>;expires={expires}", c.uri));
                st.regs.insert(
                    user,
                    SipBinding {
                        contact: c.uri.to_string(),
                        path,
                        source: src,
                        expires,
                    },
                );
            }
            None => {
                // `Contact: *` or expires 0: the binding goes.
                if st.regs.remove(&user).is_some()
                    || self.shared.core().feat.regs.contains_key(&user)
                {
                    let r = self.shared.core().unregister(&user);
                    if let Err(e) = r {
                        tracing::debug!(sip.user = %user, error = %e, "unregister script");
                    }
                }
            }
        }
        ok.headers.push("Expires", &expires.to_string());
        send(ok)
    }
}
