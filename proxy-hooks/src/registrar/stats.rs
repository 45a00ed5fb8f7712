//! [`RegistrarStats`]: the registrar's counters (atomics, readable in
//! tests) and their Prometheus registration.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters of the registrar. Each is an atomic shared with the registry
/// it was registered in.
#[derive(Debug, Default)]
pub struct RegistrarStats {
    /// Bindings mirrored into `reg:` (saved or refreshed).
    pub saved: Counter,
    /// Bindings removed (`expires=0`, `Contact: *`).
    pub removed: Counter,
    /// Lookups that found at least one target.
    pub lookup_hits: Counter,
    /// Lookups that found none.
    pub lookup_misses: Counter,
    /// Store reads or writes that failed or timed out.
    pub store_errors: Counter,
    /// Requests queued for another box to drop a user's registrations
    /// (an unregister that reached only one box).
    pub remote_unregisters: Counter,
    /// REGISTERs forwarded to a box.
    pub forwarded: Counter,
    /// REGISTER refreshes answered by the proxy (mid mode).
    pub absorbed: Counter,
    /// Live bindings whose flow this proxy holds (refreshed at scrape).
    pub bindings: Gauge,
    /// Of those, behind NAT.
    pub natted: Gauge,
    /// Of those, unreachable (keepalives unanswered).
    pub unreachable: Gauge,
}

impl RegistrarStats {
    /// Registers every counter (names get Prometheus' `_total` suffix).
    pub fn register(&self, registry: &mut Registry) {
        let all = [
            (
                "locus_registrar_bindings_saved",
                "Bindings mirrored into reg:",
                &self.saved,
            ),
            (
                "locus_registrar_bindings_removed",
                "Bindings removed from reg:",
                &self.removed,
            ),
            (
                "locus_registrar_lookup_hits",
                "Location lookups with targets",
                &self.lookup_hits,
            ),
            (
                "locus_registrar_lookup_misses",
                "Location lookups without targets",
                &self.lookup_misses,
            ),
            (
                "locus_registrar_store_errors",
                "Failed or timed-out store calls",
                &self.store_errors,
            ),
            (
                "locus_registrar_registers_forwarded",
                "REGISTERs forwarded to a box",
                &self.forwarded,
            ),
            (
                "locus_registrar_registers_absorbed",
                "REGISTER refreshes answered by the proxy (mid mode)",
                &self.absorbed,
            ),
            (
                "locus_registrar_remote_unregisters",
                "Unregisters forwarded to other boxes holding the user",
                &self.remote_unregisters,
            ),
        ];
        for (name, help, c) in all {
            registry.register(name, help, c.clone());
        }
        let gauges = [
            (
                "locus_registrar_own_bindings",
                "Live bindings whose flow this proxy holds",
                &self.bindings,
            ),
            (
                "locus_registrar_own_bindings_nat",
                "Own bindings of phones behind NAT",
                &self.natted,
            ),
            (
                "locus_registrar_own_bindings_unreachable",
                "Own bindings whose phone does not answer keepalives",
                &self.unreachable,
            ),
        ];
        for (name, help, g) in gauges {
            registry.register(name, help, g.clone());
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn registered_counters_are_the_live_ones() {
        let stats = RegistrarStats::default();
        let mut reg = Registry::default();
        stats.register(&mut reg);
        stats.saved.inc();
        stats.store_errors.inc_by(2);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(
            out.contains("locus_registrar_bindings_saved_total 1"),
            "{out}"
        );
        assert!(
            out.contains("locus_registrar_store_errors_total 2"),
            "{out}"
        );
        assert!(
            out.contains("locus_registrar_lookup_misses_total 0"),
            "{out}"
        );
    }
}
