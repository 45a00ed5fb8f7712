//! HTTP digest authentication as sofia does it (RFC 2617 with RFC 3261
//! 22.4) for REGISTER and, with `auth-calls` (vanilla: on), INVITE:
//! `algorithm=MD5`, `qop="auth"` offered, clients with and without qop
//! accepted. Nonces are the box's own (a UUID, as sofia's), remembered for
//! a while; one this box never issued (another box's) gets a fresh
//! challenge with `stale=true`. The 401/407 carry what FreeSWITCH 1.10.12
//! sends (capture `b0-basic-call-least-calls`, `x2-...`): `User-Agent`,
//! `Allow`, `Supported`, and on a 407 `Accept` and `Allow-Events` too.

use std::collections::VecDeque;

use locus_proxy::sip::SipMessage;
use md5::{Digest, Md5};

use super::endpoint::{Endpoint, SipState};
use super::wire;

/// Nonces remembered (the oldest is forgotten first).
const NONCES: usize = 1024;

/// The nonces this box handed out.
#[derive(Debug, Default)]
pub(crate) struct Nonces(VecDeque<String>);

impl Nonces {
    /// A fresh nonce, remembered.
    pub(super) fn issue(&mut self) -> String {
        let n = crate::stamp::uuid();
        if self.0.len() >= NONCES {
            self.0.pop_front();
        }
        self.0.push_back(n.clone());
        n
    }

    /// Whether the box issued `nonce` (and still remembers it).
    pub(super) fn known(&self, nonce: &str) -> bool {
        self.0.iter().any(|n| n == nonce)
    }
}

/// Whether a request proved its user, or the response refusing it.
pub(super) enum Verdict {
    /// The digest user, authenticated.
    Authorised(String),
    /// 401 / 407 with a challenge, or 403.
    Refused(SipMessage),
}

impl Endpoint {
    /// Checks a request's digest credentials against the directory, as
    /// sofia does: REGISTER with 401 / `Authorization`, other requests
    /// (INVITE with `auth-calls`) with 407 / `Proxy-Authorization`. No or
    /// stale credentials: a challenge; a wrong password or unknown user: 403.
    pub(super) fn authorise(&self, st: &mut SipState, req: &SipMessage, tag: &str) -> Verdict {
        let method = req.method().unwrap_or_default();
        let (status, ask, answer) = if method == "REGISTER" {
            (401, "WWW-Authenticate", "Authorization")
        } else {
            (407, "Proxy-Authenticate", "Proxy-Authorization")
        };
        let domain = self.domain();
        let creds = req.headers.get(answer).and_then(Credentials::parse);
        let stale = creds.as_ref().is_some_and(|c| !st.nonces.known(&c.nonce));
        let Some(creds) = creds.filter(|_| !stale) else {
            let mut r = wire::respond(req, status, Some(tag));
            if status == 407 {
                r.headers.push("Accept", "application/sdp");
            }
            r.headers.push("Allow", wire::ALLOW);
            r.headers.push("Supported", wire::SUPPORTED);
            if status == 407 {
                r.headers.push("Allow-Events", wire::ALLOW_EVENTS);
            }
            r.headers
                .push(ask, &challenge(&domain, &st.nonces.issue(), stale));
            // Content-Length last, as sofia writes it.
            r.headers.remove_all("Content-Length");
            r.headers.push("Content-Length", "0");
            return Verdict::Refused(r);
        };
        let password = self
            .shared
            .core()
            .cfg
            .directory
            .get(&creds.username)
            .map(|u| u.password.clone());
        if password.is_some_and(|p| creds.verify(method, &p)) {
            Verdict::Authorised(creds.username)
        } else {
            tracing::debug!(sip.user = %creds.username, sip.method = method, "digest refused");
            Verdict::Refused(wire::respond(req, 403, Some(tag)))
        }
    }
}

/// The `WWW-Authenticate` / `Proxy-Authenticate` value, in sofia's order
/// (`stale=true` after the nonce).
pub(super) fn challenge(realm: &str, nonce: &str, stale: bool) -> String {
    let stale = if stale { " stale=true," } else { "" };
    format!("Digest realm=\"{realm}\", nonce=\"{nonce}\",{stale} algorithm=MD5, qop=\"auth\"")
}

/// The fields of an `Authorization: Digest ...` value.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub qop: Option<String>,
    pub nc: Option<String>,
    pub cnonce: Option<String>,
}

impl Credentials {
    /// Parses a Digest credentials value; `None` for another scheme or
    /// when a required field is missing.
    pub(super) fn parse(value: &str) -> Option<Self> {
        let (scheme, rest) = value.trim().split_once(char::is_whitespace)?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut c = Credentials::default();
        for (k, v) in params(rest) {
            match k.to_ascii_lowercase().as_str() {
                "username" => c.username = v,
                "realm" => c.realm = v,
                "nonce" => c.nonce = v,
                "uri" => c.uri = v,
                "response" => c.response = v.to_ascii_lowercase(),
                "qop" => c.qop = Some(v),
                "nc" => c.nc = Some(v),
                "cnonce" => c.cnonce = Some(v),
                _ => {}
            }
        }
        let required = [&c.username, &c.nonce, &c.uri, &c.response];
        (!required.iter().any(|f| f.is_empty())).then_some(c)
    }

    /// Whether the response proves `password` for `method`.
    pub(super) fn verify(&self, method: &str, password: &str) -> bool {
        self.expected(method, password)
            .is_some_and(|e| e == self.response)
    }

    /// The response proving `password` for `method` with these fields;
    /// `None` for a qop other than `auth` or one lacking nc/cnonce.
    fn expected(&self, method: &str, password: &str) -> Option<String> {
        let ha1 = md5_hex(&format!("{}:{}:{password}", self.username, self.realm));
        let ha2 = md5_hex(&format!("{method}:{}", self.uri));
        let expected = match (&self.qop, &self.nc, &self.cnonce) {
            (Some(qop), Some(nc), Some(cnonce)) if qop.eq_ignore_ascii_case("auth") => {
                md5_hex(&format!("{ha1}:{}:{nc}:{cnonce}:{qop}:{ha2}", self.nonce))
            }
            (None, _, _) => md5_hex(&format!("{ha1}:{}:{ha2}", self.nonce)),
            _ => return None,
        };
        Some(expected)
    }
}

/// The phone's side (`crate::phone`): the `Authorization` value answering
/// a `WWW-Authenticate` / `Proxy-Authenticate` `challenge` for `method`
/// on `uri`; `None` when the challenge is not an MD5 Digest one. With
/// `qop="auth"` offered the answer uses it (nc 1, a fresh cnonce), as
/// sofia-sip's client does.
pub(crate) fn answer_challenge(
    challenge: &str,
    method: &str,
    uri: &str,
    user: &str,
    password: &str,
) -> Option<String> {
    let (scheme, rest) = challenge.trim().split_once(char::is_whitespace)?;
    if !scheme.eq_ignore_ascii_case("Digest") {
        return None;
    }
    let fields = params(rest);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    if field("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("MD5")) {
        return None;
    }
    let offers_auth =
        field("qop").is_some_and(|q| q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")));
    let mut c = Credentials {
        username: user.to_owned(),
        realm: field("realm").unwrap_or_default(),
        nonce: field("nonce")?,
        uri: uri.to_owned(),
        ..Credentials::default()
    };
    if offers_auth {
        c.qop = Some("auth".into());
        c.nc = Some("00000001".into());
        c.cnonce = Some(super::wire::token());
    }
    c.response = c.expected(method, password)?;
    let mut v = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm=MD5",
        c.username, c.realm, c.nonce, c.uri, c.response
    );
    if let (Some(nc), Some(cnonce)) = (&c.nc, &c.cnonce) {
        v.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    Some(v)
}

/// Lower-case hex MD5 of `s`.
pub(super) fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `k=v, k="v, with comma"` pairs, quotes removed.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    // Each round consumes at least one byte, so this ends.
    while !rest.is_empty() {
        let Some((k, after)) = rest.split_once('=') else {
            break;
        };
        let after = after.trim_start();
        let (v, next) = if let Some(q) = after.strip_prefix('"') {
            match q.split_once('"') {
                Some((v, n)) => (v, n),
                None => (q, ""),
            }
        } else {
            after.split_once(',').map_or((after, ""), |(v, n)| (v, n))
        };
        out.push((
            k.trim().trim_start_matches(',').trim().to_owned(),
            v.trim().to_owned(),
        ));
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example() {
        // RFC 2617 3.5, with the SIP method in place of GET.
        let c = Credentials::parse(
            r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert!(c.verify("GET", "Circle Of Life"));
        assert!(!c.verify("GET", "circle of life"));
        assert!(!c.verify("REGISTER", "Circle Of Life"));
    }

    #[test]
    fn without_qop_and_garbage() {
        let ha1 = md5_hex("1000:d:1234");
        let ha2 = md5_hex("REGISTER:sip:d");
        let resp = md5_hex(&format!("{ha1}:n1:{ha2}"));
        let v =
            format!(r#"Digest username="1000",realm="d",nonce="n1",uri="sip:d",response="{resp}""#);
        assert!(Credentials::parse(&v).unwrap().verify("REGISTER", "1234"));
        assert!(Credentials::parse("Basic abc").is_none());
        assert!(Credentials::parse("Digest username=").is_none());
        assert!(Credentials::parse("Digest ,,,=\"").is_none());
    }

    #[test]
    fn challenges_read_like_the_capture() {
        // b0-basic-call-least-calls-sip.txt
        assert_eq!(
            challenge("farm.test", "86d15685-c1ed-437a-bf2d-03bed7bd7a5b", false),
            r#"Digest realm="farm.test", nonce="86d15685-c1ed-437a-bf2d-03bed7bd7a5b", algorithm=MD5, qop="auth""#
        );
        assert_eq!(
            challenge("farm.test", "dc0db4b6-7ac9-41ec-a2a6-b7c8ccd9fa25", true),
            r#"Digest realm="farm.test", nonce="dc0db4b6-7ac9-41ec-a2a6-b7c8ccd9fa25", stale=true, algorithm=MD5, qop="auth""#
        );
        let mut n = Nonces::default();
        let nonce = n.issue();
        assert!(n.known(&nonce) && !n.known("other"));
        let parts: Vec<usize> = nonce.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12], "{nonce}");
    }

    #[test]
    fn a_phone_answer_passes_the_box_check() {
        for qop in [true, false] {
            let ch = challenge("d.test", "n42", false);
            let ch = if qop {
                ch
            } else {
                ch.replace(", qop=\"auth\"", "")
            };
            let v = answer_challenge(&ch, "REGISTER", "sip:d.test", "1000", "1234").unwrap();
            let c = Credentials::parse(&v).unwrap();
            assert_eq!((c.realm.as_str(), c.nonce.as_str()), ("d.test", "n42"));
            assert_eq!(c.qop.is_some(), qop, "{v}");
            assert!(c.verify("REGISTER", "1234"), "{v}");
            assert!(!c.verify("REGISTER", "4321"));
        }
        assert!(answer_challenge("Basic realm=\"x\"", "REGISTER", "sip:d", "u", "p").is_none());
        assert!(answer_challenge("Digest realm=\"x\"", "REGISTER", "sip:d", "u", "p").is_none());
    }
}
