//! Helpers of the locality tests (`proxy_pickup.rs`, `proxy_locality.rs`):
//! a SIP farm whose boxes share a custom directory (pickup groups of our
//! choosing), sipp runs fed by an injection file (many phones in one run),
//! and counts of what each box received.

use std::collections::BTreeMap;
use std::path::PathBuf;

use locus_proxy::server::ProxyConfig;
use locus_schema::NodeId;
use locus_sim::SipSeen;

use super::sipfarm::SipFarm;

/// Node id literal.
pub fn node(id: &str) -> NodeId {
    NodeId::new(id).expect("node id")
}

/// The box (name) whose index in the proxy's snapshot is `ix`.
pub fn node_name(snap: &locus_proxy::FarmSnapshot, ix: usize) -> String {
    snap.node(ix)
        .map(|n| n.id.as_str().to_owned())
        .unwrap_or_default()
}

/// INVITEs (distinct Call-IDs) each box received that match `pick`, by box.
pub fn invites_where(
    farm: &SipFarm,
    pick: impl Fn(&SipSeen) -> bool,
) -> BTreeMap<String, Vec<SipSeen>> {
    farm.nodes
        .iter()
        .map(|n| {
            let mut seen: Vec<SipSeen> = n
                .sim
                .sip_received()
                .into_iter()
                .filter(|s| s.method == "INVITE" && pick(s))
                .collect();
            // Retransmissions repeat the Call-ID: count each call once.
            seen.sort_by(|a, b| a.call_id.cmp(&b.call_id));
            seen.dedup_by(|a, b| a.call_id == b.call_id);
            (n.id.as_str().to_owned(), seen)
        })
        .collect()
}

/// The boxes (names) that received an INVITE for R-URI user `user`.
pub fn boxes_for(farm: &SipFarm, user: &str) -> Vec<String> {
    invites_where(farm, |s| s.ruri_user.as_deref() == Some(user))
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, _)| k)
        .collect()
}

/// A sipp injection file (`-inf`, SEQUENTIAL): one row per call, `field0`
/// the caller, `field1` its credentials for the box's challenge (sipp
/// cannot nest `[field0]` inside `[authentication]`). Removed on drop.
pub struct InjectionFile {
    /// Where it is.
    pub path: PathBuf,
}

impl InjectionFile {
    /// Writes the rows.
    pub fn new(callers: &[String]) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "locus-inf-{}-{}.csv",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let mut text = String::from("SEQUENTIAL\n");
        for c in callers {
            let pw = locus_sim::VANILLA_PASSWORD;
            text.push_str(&format!(
                "{c};[authentication username={c} password={pw}];\n"
            ));
        }
        std::fs::write(&path, text).expect("write injection file");
        InjectionFile { path }
    }

    /// The sipp arguments that read it.
    pub fn args(&self) -> Vec<String> {
        vec!["-inf".into(), self.path.display().to_string()]
    }
}

impl Drop for InjectionFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Polls `ok` until it holds (panics after [`super::WAIT`]).
pub async fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + super::WAIT;
    loop {
        if ok() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(super::POLL).await;
    }
}

/// Health probes that only a dead box fails: the default test probes (300
/// ms timeout, down after 2 misses) take a live box down whenever a loaded
/// 2-core machine stalls the process for half a second, and a pickup must
/// not go to a box the proxy thinks is down. These tests are about
/// locality, not failover.
pub fn calm_health(cfg: &mut ProxyConfig) {
    cfg.health.timeout = std::time::Duration::from_secs(2);
    cfg.health.down_after = 4;
}
