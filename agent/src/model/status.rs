//! The node status (`{id}:node`): load figures from HEARTBEAT and
//! `api status`, counts from the model itself, and the ESL link.
//!
//! `Session-Per-Sec` in HEARTBEAT is not a rate: it is what is left of the
//! per-second session budget (`runtime.sps`, counting down from
//! `max-sessions-per-second`, 30 in the captures while idle). The rate of
//! the last second is `Session-Per-Sec-Last`, so that is what `sps` holds;
//! `Session-Per-Sec` is only a fallback for an event without it.

use locus_schema::NodeStatus;

use crate::listing::CoreStatus;

use super::facts::Facts;
use super::{Model, Update};

fn parse_u32(v: Option<&str>) -> Option<u32> {
    v?.trim().parse().ok()
}

/// Idle CPU percent; non-finite or out-of-range values are garbage.
fn parse_cpu(v: Option<&str>) -> Option<f64> {
    v?.trim()
        .parse::<f64>()
        .ok()
        .filter(|c| c.is_finite() && (0.0..=100.0).contains(c))
}

/// Equal as far as publishing goes (the write time does not count).
fn same(a: &NodeStatus, b: &NodeStatus) -> bool {
    a.calls == b.calls
        && a.channels == b.channels
        && a.esl == b.esl
        && a.max_sessions == b.max_sessions
        && a.sps == b.sps
        && a.idle_cpu.to_bits() == b.idle_cpu.to_bits()
        && a.version == b.version
        && a.weight == b.weight
        && a.role == b.role
        && a.state == b.state
        && a.sip_uri == b.sip_uri
}

impl Model {
    /// A HEARTBEAT event.
    pub(crate) fn on_heartbeat(&mut self, f: &Facts<'_>) {
        let s = &mut self.status;
        if let Some(v) = parse_u32(f.max_sessions) {
            s.max_sessions = v;
        }
        if let Some(v) = parse_u32(f.sps_last).or_else(|| parse_u32(f.sps)) {
            s.sps = v;
        }
        if let Some(v) = parse_cpu(f.idle_cpu) {
            s.idle_cpu = v;
        }
        if let Some(v) = f.version.filter(|v| !v.is_empty()) {
            v.clone_into(&mut s.version);
        }
    }

    /// Figures from `api status`.
    pub fn apply_status(&mut self, st: &CoreStatus, now_ms: u64) -> Update {
        let s = &mut self.status;
        s.max_sessions = st.max_sessions;
        s.sps = st.sps;
        if st.idle_cpu.is_finite() && (0.0..=100.0).contains(&st.idle_cpu) {
            s.idle_cpu = st.idle_cpu;
        }
        if !st.version.is_empty() {
            s.version.clone_from(&st.version);
        }
        self.flush(now_ms)
    }

    /// The status to publish, if it changed since last published.
    pub(crate) fn take_status(&mut self, now_ms: u64) -> Option<NodeStatus> {
        // Counted here, not taken from `Session-Count`: the model's counts
        // move with every event, the heartbeat's only every 20 s.
        self.status.calls = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
        self.status.channels = u32::try_from(self.channels.len()).unwrap_or(u32::MAX);
        if same(&self.status, &self.published_status) {
            return None;
        }
        self.status.updated_ms = now_ms;
        self.published_status = self.status.clone();
        Some(self.status.clone())
    }
}
