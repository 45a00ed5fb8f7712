//! [`ProxyStats`]: the proxy core's counters, registered into a
//! prometheus-client registry and readable directly by tests.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabel {
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RuleLabel {
    rule: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Why a message was dropped: the `reason` label of
/// `locus_proxy_sip_dropped`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Not by the book and nothing to answer: a faulty response (version,
    /// status code, Content-Length, RFC 3261 18.3), a response or ACK
    /// without a readable Via, a bad request that cannot be answered.
    Malformed,
    /// A response that matches no transaction of ours (RFC 3261 16.7:
    /// strays other than a 2xx to an INVITE).
    Unmatched,
    /// A transaction's queue was full.
    Overload,
}

impl DropReason {
    const ALL: [DropReason; 3] = [
        DropReason::Malformed,
        DropReason::Unmatched,
        DropReason::Overload,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::Unmatched => "unmatched",
            DropReason::Overload => "overload",
        }
    }
}

/// Upper bounds (seconds) of the routing-decision histogram: fine steps
/// around the 50 us target (issue 3), up to 10 ms for a Redis lookup (rule 7).
const ROUTE_BUCKETS: [f64; 20] = [
    1e-6, 2e-6, 3e-6, 5e-6, 7.5e-6, 10e-6, 15e-6, 20e-6, 30e-6, 40e-6, 50e-6, 75e-6, 100e-6,
    200e-6, 500e-6, 1e-3, 2e-3, 3e-3, 5e-3, 10e-3,
];

/// Counters of one [`super::Proxy`].
#[derive(Debug)]
pub struct ProxyStats {
    requests: Family<MethodLabel, Counter>,
    relayed: Family<ClassLabel, Counter>,
    replies: Family<StatusLabel, Counter>,
    by_rule: Family<RuleLabel, Counter>,
    by_node: Family<NodeLabel, Counter>,
    failovers: Counter,
    redirects: Counter,
    transactions: Counter,
    active: Gauge,
    retransmissions: Counter,
    dropped: Family<ReasonLabel, Counter>,
    strays: Counter,
    released: Counter,
    overloaded: Counter,
    upgrades: Counter,
    forged: Counter,
    gated: Counter,
    route_decision: Histogram,
}

impl Default for ProxyStats {
    fn default() -> Self {
        ProxyStats {
            requests: Family::default(),
            relayed: Family::default(),
            replies: Family::default(),
            by_rule: Family::default(),
            by_node: Family::default(),
            failovers: Counter::default(),
            redirects: Counter::default(),
            transactions: Counter::default(),
            active: Gauge::default(),
            retransmissions: Counter::default(),
            dropped: Family::default(),
            strays: Counter::default(),
            released: Counter::default(),
            overloaded: Counter::default(),
            upgrades: Counter::default(),
            forged: Counter::default(),
            gated: Counter::default(),
            route_decision: Histogram::new(ROUTE_BUCKETS),
        }
    }
}

/// Known methods as static labels; anything else is `other` (bounded cardinality).
fn method_label(m: &str) -> &'static str {
    const KNOWN: [&str; 14] = [
        "INVITE",
        "ACK",
        "BYE",
        "CANCEL",
        "OPTIONS",
        "REGISTER",
        "SUBSCRIBE",
        "NOTIFY",
        "REFER",
        "MESSAGE",
        "INFO",
        "UPDATE",
        "PRACK",
        "PUBLISH",
    ];
    KNOWN.iter().find(|k| **k == m).copied().unwrap_or("other")
}

fn class_label(status: u16) -> &'static str {
    match status / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "6xx",
    }
}

impl ProxyStats {
    /// Registers every metric under `locus_proxy_sip_*`.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry;
        r.register(
            "locus_proxy_sip_requests",
            "SIP requests received, by method",
            self.requests.clone(),
        );
        r.register(
            "locus_proxy_sip_responses_relayed",
            "Responses relayed upstream, by class",
            self.relayed.clone(),
        );
        r.register(
            "locus_proxy_sip_replies",
            "Responses generated by the proxy, by status",
            self.replies.clone(),
        );
        r.register(
            "locus_proxy_sip_branches",
            "Branches forwarded, by routing rule",
            self.by_rule.clone(),
        );
        r.register(
            "locus_proxy_sip_node_branches",
            "Branches forwarded, by farm node",
            self.by_node.clone(),
        );
        r.register(
            "locus_proxy_sip_failovers",
            "Branches started after a failed one",
            self.failovers.clone(),
        );
        r.register(
            "locus_proxy_sip_redirects",
            "302 X-Locus-Node redirects followed",
            self.redirects.clone(),
        );
        r.register(
            "locus_proxy_sip_transactions",
            "Server transactions created",
            self.transactions.clone(),
        );
        r.register(
            "locus_proxy_sip_transactions_active",
            "Server transactions alive",
            self.active.clone(),
        );
        r.register(
            "locus_proxy_sip_retransmissions",
            "Request retransmissions absorbed",
            self.retransmissions.clone(),
        );
        for reason in DropReason::ALL {
            // Every reason shows, 0 included, so a rate can be taken at once.
            self.reason(reason);
        }
        r.register(
            "locus_proxy_sip_dropped",
            "Messages dropped, by reason (malformed, unmatched, overload)",
            self.dropped.clone(),
        );
        r.register(
            "locus_proxy_sip_strays_dropped",
            "Responses with no transaction whose top Via this proxy did not write, dropped",
            self.strays.clone(),
        );
        r.register(
            "locus_proxy_sip_released",
            "Late 2xx from a branch given up, ACKed and BYEd by the proxy (never relayed)",
            self.released.clone(),
        );
        r.register(
            "locus_proxy_sip_overloaded",
            "Requests refused with 503 because the transaction table was full",
            self.overloaded.clone(),
        );
        r.register(
            "locus_proxy_sip_forged_routes",
            "Requests refused (403) for a flow token or Record-Route signature that does not hold",
            self.forged.clone(),
        );
        r.register(
            "locus_proxy_sip_gate_refused",
            "Requests refused by the gate: a next hop from the request's own headers not allowed",
            self.gated.clone(),
        );
        r.register(
            "locus_proxy_sip_tcp_upgrades",
            "Requests too large for UDP sent over TCP instead (RFC 3261 18.1.1)",
            self.upgrades.clone(),
        );
        r.register(
            "locus_proxy_route_decision_seconds",
            "Time the router took to decide a new transaction's targets",
            self.route_decision.clone(),
        );
    }

    pub(crate) fn request(&self, method: &str) {
        self.requests
            .get_or_create(&MethodLabel {
                method: method_label(method),
            })
            .inc();
    }
    pub(crate) fn relayed(&self, status: u16) {
        self.relayed
            .get_or_create(&ClassLabel {
                class: class_label(status),
            })
            .inc();
    }
    pub(crate) fn replied(&self, status: u16) {
        self.replies.get_or_create(&StatusLabel { status }).inc();
    }
    pub(crate) fn branch(&self, rule: &'static str, node: Option<&str>) {
        self.by_rule.get_or_create(&RuleLabel { rule }).inc();
        if let Some(n) = node {
            self.by_node
                .get_or_create(&NodeLabel {
                    node: n.to_string(),
                })
                .inc();
        }
    }
    pub(crate) fn failover(&self) {
        self.failovers.inc();
    }
    pub(crate) fn redirect(&self) {
        self.redirects.inc();
    }
    pub(crate) fn txn_started(&self) {
        self.transactions.inc();
        self.active.inc();
    }
    pub(crate) fn txn_ended(&self) {
        self.active.dec();
    }
    pub(crate) fn retransmission(&self) {
        self.retransmissions.inc();
    }
    pub(crate) fn drop_one(&self, reason: DropReason) {
        self.reason(reason).inc();
    }
    fn reason(&self, reason: DropReason) -> Counter {
        self.dropped
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .clone()
    }
    /// A stray response whose top Via is not ours (also counts as dropped).
    pub(crate) fn stray(&self) {
        self.strays.inc();
        self.drop_one(DropReason::Unmatched);
    }
    pub(crate) fn release(&self) {
        self.released.inc();
    }
    pub(crate) fn overload(&self) {
        self.overloaded.inc();
    }
    pub(crate) fn forged_token(&self) {
        self.forged.inc();
    }
    pub(crate) fn gate_refused(&self) {
        self.gated.inc();
    }
    pub(crate) fn upgrade(&self) {
        self.upgrades.inc();
    }
    pub(crate) fn route_decided(&self, took: std::time::Duration) {
        self.route_decision.observe(took.as_secs_f64());
    }

    /// Requests refused for a forged flow token or Record-Route signature.
    pub fn forged_routes(&self) -> u64 {
        self.forged.get()
    }

    /// Requests refused by the gate.
    pub fn gate_refusals(&self) -> u64 {
        self.gated.get()
    }

    /// Requests received with `method`.
    pub fn requests(&self, method: &str) -> u64 {
        self.requests
            .get_or_create(&MethodLabel {
                method: method_label(method),
            })
            .get()
    }
    /// Responses relayed with a status in `status`'s class.
    pub fn relayed_class(&self, status: u16) -> u64 {
        self.relayed
            .get_or_create(&ClassLabel {
                class: class_label(status),
            })
            .get()
    }
    /// Responses the proxy generated with `status`.
    pub fn replies(&self, status: u16) -> u64 {
        self.replies.get_or_create(&StatusLabel { status }).get()
    }
    /// Branches forwarded under routing rule `rule` ([`super::Label::as_str`]).
    pub fn branches(&self, rule: &'static str) -> u64 {
        self.by_rule.get_or_create(&RuleLabel { rule }).get()
    }
    /// Branches forwarded to farm node `node`.
    pub fn node_branches(&self, node: &str) -> u64 {
        self.by_node
            .get_or_create(&NodeLabel {
                node: node.to_string(),
            })
            .get()
    }
    /// Failovers.
    pub fn failovers(&self) -> u64 {
        self.failovers.get()
    }
    /// Redirects followed.
    pub fn redirects(&self) -> u64 {
        self.redirects.get()
    }
    /// Server transactions created.
    pub fn transactions(&self) -> u64 {
        self.transactions.get()
    }
    /// Server transactions alive now.
    pub fn active(&self) -> i64 {
        self.active.get()
    }
    /// Request retransmissions absorbed.
    pub fn retransmissions(&self) -> u64 {
        self.retransmissions.get()
    }
    /// Messages dropped, every reason.
    pub fn dropped(&self) -> u64 {
        DropReason::ALL.iter().map(|r| self.dropped_for(*r)).sum()
    }
    /// Messages dropped for `reason`.
    pub fn dropped_for(&self, reason: DropReason) -> u64 {
        self.reason(reason).get()
    }
    /// Stray responses dropped because their top Via was not ours.
    pub fn strays(&self) -> u64 {
        self.strays.get()
    }
    /// Late 2xx released (ACK + BYE by the proxy).
    pub fn released(&self) -> u64 {
        self.released.get()
    }
    /// Requests sent over TCP because they were too large for UDP.
    pub fn upgrades(&self) -> u64 {
        self.upgrades.get()
    }
    /// Requests refused because the transaction table was full.
    pub fn overloaded(&self) -> u64 {
        self.overloaded.get()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn counters_are_exposed_with_their_labels() {
        let s = ProxyStats::default();
        s.request("INVITE");
        s.request("FOO");
        s.replied(483);
        s.relayed(486);
        s.branch("standard", Some("fs1"));
        s.txn_started();
        s.drop_one(DropReason::Unmatched);
        s.route_decided(std::time::Duration::from_micros(12));
        s.route_decided(std::time::Duration::from_micros(400));
        let mut r = Registry::default();
        s.register(&mut r);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &r).unwrap();
        for want in [
            "locus_proxy_sip_requests_total{method=\"INVITE\"} 1",
            "locus_proxy_sip_requests_total{method=\"other\"} 1",
            "locus_proxy_sip_replies_total{status=\"483\"} 1",
            "locus_proxy_sip_responses_relayed_total{class=\"4xx\"} 1",
            "locus_proxy_sip_branches_total{rule=\"standard\"} 1",
            "locus_proxy_sip_node_branches_total{node=\"fs1\"} 1",
            "locus_proxy_sip_transactions_active 1",
            "locus_proxy_sip_dropped_total{reason=\"unmatched\"} 1",
            "locus_proxy_sip_dropped_total{reason=\"malformed\"} 0",
            "locus_proxy_route_decision_seconds_count 2",
            "locus_proxy_route_decision_seconds_bucket{le=\"0.00001\"} 0",
            "locus_proxy_route_decision_seconds_bucket{le=\"0.000015\"} 1",
            "locus_proxy_route_decision_seconds_bucket{le=\"0.0005\"} 2",
        ] {
            assert!(out.contains(want), "missing {want} in\n{out}");
        }
        assert_eq!(s.requests("INVITE"), 1);
        assert_eq!(s.active(), 1);
        assert_eq!((s.dropped(), s.dropped_for(DropReason::Malformed)), (1, 0));
    }
}
