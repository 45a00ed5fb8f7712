//! Keepalives toward the phones whose flows this proxy holds (issue 8
//! item 2; `docs/location.md`, "Keepalives").
//!
//! A phone behind NAT is reachable only while its pinhole is open, and the
//! pinhole closes after 30-120 s of silence. The proxy that owns a phone's
//! flow therefore pings it from the very socket (UDP) or connection (TCP)
//! the phone registered on, every `interval`:
//!
//! * `method = "options"` (default): an OPTIONS; any final response, 404
//!   or 481 included, proves the phone. Over TCP too.
//! * `method = "crlf"`: a CRLFCRLF. Over TCP the phone answers a CRLF
//!   (RFC 5626 4.4.1); over UDP nothing comes back (RFC 5626 uses STUN
//!   there), so it only keeps the pinhole open and never finds a dead one.
//! * `method = "off"`: none.
//!
//! One ping per flow, whatever the number of contacts registered on it.
//! The first ping of a new flow comes at a random point of its first
//! interval, then one every interval: 100,000 phones registering in the
//! same second still spread their pings evenly. A ping still unanswered
//! when the next is due is a miss; `fail_after` misses in a row make every
//! binding on the flow unreachable (written to the store, so no proxy
//! forks calls to it); a later answer, or a REGISTER, revives it. A TCP
//! connection that closes makes its bindings unreachable at once (the
//! phone must register again over a new one). Answers are absorbed by
//! the proxy core ([`Keepalive::on_response`]), never relayed.
//!
//! The book (`keepalive/book.rs`) is a std mutex held for map operations
//! only; the timer is a map ordered by due time, so a wake-up costs the
//! pings due, not a scan of every flow.

use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Deserialize;

use crate::proxy::Flow;

mod book;
mod run;

pub use book::Keepalive;

/// How the proxy pings a phone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeepaliveMethod {
    /// SIP OPTIONS (UDP and TCP); finds dead phones.
    Options,
    /// CRLFCRLF; finds dead phones over TCP only.
    Crlf,
    /// No keepalives.
    Off,
}

/// `[proxy.keepalive]` (unknown keys refused).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeepaliveConfig {
    /// `options` (default), `crlf` or `off`.
    pub method: KeepaliveMethod,
    /// Time between two pings of one flow.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// Unanswered pings in a row that make the flow's bindings unreachable.
    pub fail_after: u32,
}

impl Default for KeepaliveConfig {
    fn default() -> Self {
        KeepaliveConfig {
            method: KeepaliveMethod::Options,
            interval: Duration::from_secs(25),
            fail_after: 3,
        }
    }
}

impl KeepaliveConfig {
    /// Refuses an interval under 100 ms and a zero `fail_after`.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.interval < Duration::from_millis(100) {
            return Err("proxy.keepalive: interval must be >= 100ms");
        }
        if self.fail_after == 0 {
            return Err("proxy.keepalive: fail_after must be >= 1");
        }
        Ok(())
    }
}

/// One registered contact: its AOR and Contact URI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContactKey {
    /// AOR domain, lower-cased.
    pub domain: String,
    /// AOR user, lower-cased.
    pub user: String,
    /// The Contact URI as stored.
    pub contact: String,
}

/// The contacts of one flow became unreachable, or reachable again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fate {
    /// The flow the pings went over.
    pub flow: Flow,
    /// Its contacts.
    pub contacts: Vec<ContactKey>,
    /// Reachable again (`true`) or not.
    pub reachable: bool,
}

/// Writes a [`Fate`] down (the registrar: its own map and the store).
#[async_trait]
pub trait Reachability: Send + Sync {
    /// Marks `fate.contacts` as `fate.reachable`, when they are still on
    /// `fate.flow` (a phone that registered again since is left alone).
    async fn set_reachable(&self, fate: Fate);
}

/// Keepalive counters and gauges.
#[derive(Debug, Default)]
pub struct KeepaliveStats {
    /// Pings sent.
    pub sent: Counter,
    /// Pings answered.
    pub answered: Counter,
    /// Pings unanswered when the next was due.
    pub missed: Counter,
    /// Pings that could not be sent (TCP connection gone, socket error).
    pub send_errors: Counter,
    /// Flows whose bindings became unreachable.
    pub went_unreachable: Counter,
    /// Unreachable flows that answered again.
    pub revived: Counter,
    /// Flows pinged.
    pub flows: Gauge,
    /// Flows pinged whose bindings are unreachable.
    pub unreachable: Gauge,
}

impl KeepaliveStats {
    /// Registers every metric (counters get Prometheus' `_total` suffix).
    pub fn register(&self, registry: &mut Registry) {
        let counters = [
            ("locus_keepalive_sent", "Keepalive pings sent", &self.sent),
            (
                "locus_keepalive_answered",
                "Keepalive pings answered",
                &self.answered,
            ),
            (
                "locus_keepalive_missed",
                "Keepalive pings unanswered when the next was due",
                &self.missed,
            ),
            (
                "locus_keepalive_send_errors",
                "Keepalive pings that could not be sent",
                &self.send_errors,
            ),
            (
                "locus_keepalive_went_unreachable",
                "Flows whose bindings became unreachable",
                &self.went_unreachable,
            ),
            (
                "locus_keepalive_revived",
                "Unreachable flows that answered again",
                &self.revived,
            ),
        ];
        for (name, help, c) in counters {
            registry.register(name, help, c.clone());
        }
        registry.register(
            "locus_keepalive_flows",
            "Phone flows this proxy pings",
            self.flows.clone(),
        );
        registry.register(
            "locus_keepalive_unreachable_flows",
            "Pinged flows whose bindings are unreachable",
            self.unreachable.clone(),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_refusals() {
        let c: KeepaliveConfig = toml::from_str("").unwrap();
        assert_eq!(c, KeepaliveConfig::default());
        assert_eq!(c.interval, Duration::from_secs(25));
        let c: KeepaliveConfig =
            toml::from_str("method = \"crlf\"\ninterval = \"10s\"\nfail_after = 2").unwrap();
        assert_eq!(c.method, KeepaliveMethod::Crlf);
        assert!(c.validate().is_ok());
        assert!(toml::from_str::<KeepaliveConfig>("method = \"stun\"").is_err());
        assert!(toml::from_str::<KeepaliveConfig>("every = 1").is_err());
        let fast: KeepaliveConfig = toml::from_str("interval = \"10ms\"").unwrap();
        assert!(fast.validate().is_err());
        let never: KeepaliveConfig = toml::from_str("fail_after = 0").unwrap();
        assert!(never.validate().is_err());
    }
}
