//! [`CoreConfig`]: `[proxy.core]`, the proxy core's identity, timers
//! (RFC 3261 17.1.1.1 T1/T2/T4, plus the failover timers a farm proxy
//! needs on top: Kamailio's `fr_timer` / `fr_inv_timer` equivalents, see
//! `invite_timeout` and `ring_timeout`) and limits (transaction table,
//! path MTU).

use std::time::Duration;

use serde::Deserialize;

use crate::sip::uri::split_host_port;

/// `[proxy.core]` (every field optional, unknown keys refused).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoreConfig {
    /// Proxy id: names the owner of bindings and the proxy's lease, salts
    /// branches and To tags, names the proxy in logs. Default: the host
    /// name. Two live proxies may not share one (`cluster.rs`).
    pub id: String,
    /// `host[:port]` written into Via and Record-Route instead of the
    /// listener address (a proxy behind NAT or bound to `0.0.0.0`).
    pub advertise: Option<String>,
    /// RTT estimate (RFC 3261 T1): first UDP retransmission interval.
    #[serde(with = "humantime_serde")]
    pub t1: Duration,
    /// Cap of the non-INVITE retransmission interval (T2).
    #[serde(with = "humantime_serde")]
    pub t2: Duration,
    /// How long a finished transaction lingers to absorb retransmissions (T4).
    #[serde(with = "humantime_serde")]
    pub t4: Duration,
    /// An INVITE branch with no provisional response beyond 100 within
    /// this fails over (`fr_timer`; Kamailio's bench config uses 2 s).
    #[serde(with = "humantime_serde")]
    pub invite_timeout: Duration,
    /// After a provisional response, a branch without a final one within
    /// this is CANCELled and fails over (`fr_inv_timer`).
    #[serde(with = "humantime_serde")]
    pub ring_timeout: Duration,
    /// A non-INVITE branch without a final response within this has
    /// failed (Timer F, 64*T1); with no response at all and another
    /// target left to try, it fails over earlier, after `invite_timeout`.
    #[serde(with = "humantime_serde")]
    pub non_invite_timeout: Duration,
    /// Most server transactions alive at once (lingering ones included);
    /// beyond it new requests get `503 Service Unavailable` with
    /// `Retry-After` (ACK and CANCEL still pass: they open none).
    pub max_transactions: usize,
    /// Path MTU in bytes: a request larger than this minus 200 bytes goes
    /// over TCP when its target allows it (RFC 3261 18.1.1).
    pub path_mtu: usize,
    /// Worker threads of the `locus proxy` process, and receive queues of
    /// the proxy core (messages are spread over them by Call-ID, so one
    /// call's messages stay in order; each UDP socket is read by as many
    /// tasks). `0` = one per CPU. More than the CPUs buys nothing on a
    /// quiet host and costs CPU per call (docs/performance.md).
    pub workers: usize,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            id: crate::cluster::default_id(),
            advertise: None,
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
            invite_timeout: Duration::from_secs(2),
            ring_timeout: Duration::from_secs(120),
            non_invite_timeout: Duration::from_secs(32),
            max_transactions: 65_536,
            path_mtu: 1500,
            workers: 0,
        }
    }
}

/// A `[proxy.core]` value out of range.
#[derive(Debug, thiserror::Error)]
#[error("proxy.core: {0}")]
pub struct CoreConfigError(pub &'static str);

impl CoreConfig {
    /// [`CoreConfig::workers`] resolved: the configured count, or the
    /// number of CPUs.
    pub fn worker_count(&self) -> usize {
        if self.workers > 0 {
            return self.workers;
        }
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    }

    /// Refuses zero timers, `t2 < t1`, an empty id, an unreadable
    /// `advertise`, no transactions and an MTU below 576.
    pub fn validate(&self) -> Result<(), CoreConfigError> {
        let bad = |why| Err(CoreConfigError(why));
        if self.id.is_empty()
            || !self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return bad("id must be non-empty letters, digits, '-', '_' or '.'");
        }
        let timers = [
            self.t1,
            self.t2,
            self.t4,
            self.invite_timeout,
            self.ring_timeout,
            self.non_invite_timeout,
        ];
        if timers.iter().any(Duration::is_zero) {
            return bad("timers must be > 0");
        }
        if self.t2 < self.t1 {
            return bad("t2 must be >= t1");
        }
        if self.max_transactions == 0 {
            return bad("max_transactions must be > 0");
        }
        // RFC 791: every IPv4 host takes 576-byte datagrams.
        if self.path_mtu < 576 {
            return bad("path_mtu must be >= 576");
        }
        if let Some(a) = &self.advertise
            && split_host_port(a).is_none()
        {
            return bad("advertise must be host[:port]");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn parses_humantime_values_and_refuses_unknown_keys() {
        let c: CoreConfig = toml::from_str(
            "id = \"px1\"\nadvertise = \"sip.example.com:5070\"\ninvite_timeout = \"300ms\"\nring_timeout = \"1m\"",
        )
        .unwrap();
        assert_eq!(c.id, "px1");
        assert_eq!(c.invite_timeout, Duration::from_millis(300));
        assert_eq!(c.ring_timeout, Duration::from_secs(60));
        assert_eq!(
            c.t1,
            Duration::from_millis(500),
            "unset keys keep their defaults"
        );
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<CoreConfig>("fr_timer = \"2s\"").is_err());
    }

    #[test]
    fn defaults_validate_and_bad_values_are_refused() {
        assert!(CoreConfig::default().validate().is_ok());
        let bad = [
            CoreConfig {
                id: String::new(),
                ..Default::default()
            },
            CoreConfig {
                t1: Duration::ZERO,
                ..Default::default()
            },
            CoreConfig {
                t2: Duration::from_millis(100),
                ..Default::default()
            },
            CoreConfig {
                advertise: Some("a b:x".into()),
                ..Default::default()
            },
            CoreConfig {
                max_transactions: 0,
                ..Default::default()
            },
            CoreConfig {
                path_mtu: 500,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        let ok = CoreConfig {
            advertise: Some("[2001:db8::1]:5070".into()),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
    }
}
