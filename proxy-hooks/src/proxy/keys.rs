//! [`FlowKeys`]: what makes our Route entries unforgeable. A flow token
//! (`flow=` in our Path, the Route another proxy pushes to reach a phone
//! through us) and our Record-Route (`lsig=`) carry an HMAC-SHA256 under
//! the farm secret (`[proxy.security] secret`); the core follows a Route of
//! ours only when its signature holds, under the current secret or the
//! previous one during a rotation.
//!
//! Token: `u~ADDR~CONN~SIG` (`t~` for TCP), SIG = the first 16 bytes of
//! HMAC-SHA256(secret, `u~ADDR~CONN`) in hex: bound to the transport, the
//! peer address and the connection. Record-Route: `lsig=` over `rr~` and
//! the Call-ID, so a signature lifted from one dialog opens no other.

use std::fmt;
use std::net::SocketAddr;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

use super::router::Flow;

type HmacSha256 = Hmac<Sha256>;

/// Bytes of the MAC kept (128 bits, 32 hex digits).
const SIG_BYTES: usize = 16;

/// A farm secret from the configuration; never printed.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret from text.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// What the core does with a phone's out-of-dialog request that carries a
/// Route beyond our own (`[proxy.security] preloaded_route`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreloadedRoute {
    /// 403, never sent.
    #[default]
    Refuse,
    /// Drop the Route headers and route the request like any other.
    Strip,
}

/// `[proxy.security]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecurityConfig {
    /// The farm secret signing flow tokens and Record-Routes; the same on
    /// every proxy of a farm. Unset: a random one per process (a warning:
    /// another proxy cannot use this one's tokens, nor a restarted one).
    pub secret: Option<Secret>,
    /// The secret before the last rotation, still accepted (never used to
    /// sign).
    pub previous_secret: Option<Secret>,
    /// Preloaded Routes from phones: `refuse` (403) or `strip`.
    pub preloaded_route: PreloadedRoute,
}

impl SecurityConfig {
    /// Checks what parses but cannot work: an empty or short secret.
    pub fn validate(&self) -> Result<(), String> {
        for (name, s) in [
            ("secret", &self.secret),
            ("previous_secret", &self.previous_secret),
        ] {
            if let Some(Secret(s)) = s
                && s.len() < 16
            {
                return Err(format!(
                    "proxy.security.{name}: at least 16 characters (a random string)"
                ));
            }
        }
        Ok(())
    }

    /// The keys: the configured secrets, or a random one (logged).
    pub fn keys(&self) -> FlowKeys {
        match &self.secret {
            Some(Secret(s)) => FlowKeys::new(
                s.as_bytes(),
                self.previous_secret.as_ref().map(|Secret(p)| p.as_bytes()),
            ),
            None => {
                tracing::warn!(
                    "proxy.security.secret unset: a random one for this process; \
                     a farm of several proxies needs a shared one"
                );
                FlowKeys::random()
            }
        }
    }
}

/// Why a token of ours was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `T~ADDR~CONN~SIG`.
    #[error("malformed flow token")]
    Malformed,
    /// The signature does not hold under any of our secrets.
    #[error("flow token signature does not hold")]
    BadSignature,
}

/// The current key and the one before a rotation.
#[derive(Clone)]
pub struct FlowKeys {
    current: HmacSha256,
    previous: Option<HmacSha256>,
}

impl fmt::Debug for FlowKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowKeys")
            .field("previous", &self.previous.is_some())
            .finish_non_exhaustive()
    }
}

fn key(secret: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length; `new_from_slice` cannot fail for it.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != SIG_BYTES * 2 || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl FlowKeys {
    /// Keys from `secret` (signs and verifies) and `previous` (verifies).
    pub fn new(secret: &[u8], previous: Option<&[u8]>) -> FlowKeys {
        FlowKeys {
            current: key(secret),
            previous: previous.map(key),
        }
    }

    /// A random secret for this process only.
    pub fn random() -> FlowKeys {
        let secret: [u8; 32] = rand::random();
        FlowKeys::new(&secret, None)
    }

    fn sign(&self, data: &str) -> String {
        let mut m = self.current.clone();
        m.update(data.as_bytes());
        hex(&m.finalize().into_bytes()[..SIG_BYTES])
    }

    fn verify(&self, data: &str, sig: &str) -> bool {
        let Some(sig) = unhex(sig) else {
            return false;
        };
        std::iter::once(&self.current)
            .chain(&self.previous)
            .any(|k| {
                let mut m = k.clone();
                m.update(data.as_bytes());
                // Constant time over the kept bytes.
                m.verify_truncated_left(&sig).is_ok()
            })
    }

    /// `flow` as a signed `flow=` value.
    pub fn token(&self, flow: &Flow) -> String {
        let body = flow.token();
        let sig = self.sign(&body);
        format!("{body}~{sig}")
    }

    /// The flow of a signed token; `local` is the socket the request
    /// carrying it arrived at.
    pub fn open(&self, token: &str, local: SocketAddr) -> Result<Flow, TokenError> {
        let (body, sig) = token.rsplit_once('~').ok_or(TokenError::Malformed)?;
        let flow = Flow::from_token(body, local).ok_or(TokenError::Malformed)?;
        if self.verify(body, sig) {
            Ok(flow)
        } else {
            Err(TokenError::BadSignature)
        }
    }

    /// The `lsig=` of our Record-Route in the dialog of `call_id`.
    pub fn record_route_sig(&self, call_id: &str) -> String {
        self.sign(&format!("rr~{call_id}"))
    }

    /// Whether `sig` is our Record-Route signature for `call_id`.
    pub fn check_record_route(&self, call_id: &str, sig: &str) -> bool {
        self.verify(&format!("rr~{call_id}"), sig)
    }
}

/// The flow of a token without checking its signature: for our own
/// store's bindings only (written by a proxy of the farm; the secret may
/// have rotated since), never for a token from the network.
pub fn unverified_flow(token: &str, local: SocketAddr) -> Option<Flow> {
    let body = match token.rsplit_once('~') {
        Some((body, sig)) if unhex(sig).is_some() => body,
        _ => token,
    };
    Flow::from_token(body, local)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;
    use crate::sip::{ConnId, Transport};

    fn flow() -> Flow {
        Flow {
            source: "192.0.2.7:40000".parse().unwrap(),
            transport: Transport::Tcp,
            conn: Some(ConnId(9)),
            local: "127.0.0.1:5060".parse().unwrap(),
        }
    }

    #[test]
    fn tokens_open_only_under_our_keys() {
        let k = FlowKeys::new(b"0123456789abcdef", None);
        let f = flow();
        let t = k.token(&f);
        assert!(t.starts_with("t~192.0.2.7:40000~9~"), "{t}");
        assert_eq!(k.open(&t, f.local), Ok(f));
        let other_conn = t.replacen("~9~", "~8~", 1);
        assert_eq!(k.open(&other_conn, f.local), Err(TokenError::BadSignature));
        let unsigned = f.token();
        assert!(k.open(&unsigned, f.local).is_err());
        let stranger = FlowKeys::new(b"another secret!!", None);
        assert_eq!(stranger.open(&t, f.local), Err(TokenError::BadSignature));
        let rotated = FlowKeys::new(b"the next secret!", Some(b"0123456789abcdef"));
        assert_eq!(rotated.open(&t, f.local), Ok(f));
        assert_ne!(rotated.token(&f), t, "signs with the new secret");
        assert_eq!(unverified_flow(&t, f.local), Some(f));
    }

    #[test]
    fn record_route_signature_is_per_dialog() {
        let k = FlowKeys::new(b"0123456789abcdef", None);
        let s = k.record_route_sig("call-1");
        assert!(k.check_record_route("call-1", &s));
        assert!(!k.check_record_route("call-2", &s));
        assert!(!k.check_record_route("call-1", "zz"));
    }

    #[test]
    fn short_secrets_refused_and_never_printed() {
        let c: SecurityConfig = toml::from_str("secret = \"short\"").unwrap();
        assert!(c.validate().is_err());
        let c: SecurityConfig =
            toml::from_str("secret = \"long enough secret\"\npreloaded_route = \"strip\"").unwrap();
        c.validate().unwrap();
        assert_eq!(c.preloaded_route, PreloadedRoute::Strip);
        assert!(!format!("{c:?}").contains("long enough"));
    }
}
