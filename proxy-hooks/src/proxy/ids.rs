//! Branch ids, loop detection and the best-response choice: the pure
//! parts of RFC 3261 16.3 item 4, 16.6 item 8 and 16.7 item 6.
//!
//! Our branches are `z9hG4bK-lp{salt}{seq}.{mac}.{loop}`: the magic cookie
//! (RFC 3261 8.1.1.7), a per-process salt and sequence (unique per branch),
//! a keyed hash (per-process random key) of that id and of where a response
//! would be relayed to (so a 2xx that outlives its transaction is relayed
//! statelessly only where our own request came from, never where a forged
//! Via points), and a hash of the request fields that identify it *as received* (R-URI,
//! From tag, To tag, Call-ID, CSeq number, Route set). A request that
//! comes back carrying one of our Vias whose loop hash equals its own has
//! looped (482); a spiral (the R-URI was retargeted in between) has a
//! different hash and passes. The topmost Via, which RFC 3261 16.6 lists,
//! is left out: it differs on every pass of a loop, so including it would
//! defeat the check.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sip::{SipMessage, Via};

/// Every branch this proxy writes starts with this.
pub const BRANCH_PREFIX: &str = "z9hG4bK-lp";

/// FNV-1a 64 over several fields, `|`-separated.
fn fnv(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(b'|')) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// The loop hash of a request as received (RFC 3261 16.6 item 8, minus the top Via).
pub fn loop_hash(req: &SipMessage) -> u64 {
    let ruri = req
        .request_uri()
        .map(ToString::to_string)
        .unwrap_or_default();
    let from_tag = req.from().ok().and_then(|f| f.tag().map(str::to_string));
    let to_tag = req.to().ok().and_then(|t| t.tag().map(str::to_string));
    let cseq = req.cseq().map(|(n, _)| n).unwrap_or(0).to_string();
    let routes = req.headers.get_all("Route").join(",");
    fnv(&[
        &ruri,
        from_tag.as_deref().unwrap_or(""),
        to_tag.as_deref().unwrap_or(""),
        req.call_id().unwrap_or(""),
        &cseq,
        &routes,
    ])
}

/// Generates unique branch ids.
#[derive(Debug)]
pub struct BranchGen {
    salt: u32,
    seq: AtomicU64,
    /// SipHash with random keys, drawn once per generator (per process).
    key: RandomState,
}

impl BranchGen {
    /// A generator salted with `salt` (per process, so a restart does not
    /// reuse the branches of transactions still in flight downstream).
    pub fn new(salt: u32) -> BranchGen {
        BranchGen {
            salt,
            seq: AtomicU64::new(1),
            key: RandomState::new(),
        }
    }

    fn mac(&self, id: &str, back: &str) -> u64 {
        self.key.hash_one((id, back))
    }

    /// A new branch for a request whose loop hash is `lh`; `back` names
    /// where its responses go upstream (see [`BranchGen::vouches`]).
    pub fn next(&self, lh: u64, back: &str) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        let id = format!("{BRANCH_PREFIX}{:08x}{n:x}", self.salt);
        let mac = self.mac(&id, back);
        format!("{id}.{mac:x}.{lh:x}")
    }

    /// Whether `branch` was made by this generator with this `back`: a
    /// response carrying it may be relayed there.
    pub fn vouches(&self, branch: &str, back: &str) -> bool {
        let mut parts = branch.rsplitn(3, '.');
        let (Some(_lh), Some(mac), Some(id)) = (parts.next(), parts.next(), parts.next()) else {
            return false;
        };
        id.starts_with(BRANCH_PREFIX)
            && u64::from_str_radix(mac, 16).is_ok_and(|m| m == self.mac(id, back))
    }

    /// A fresh unique token (To tags of our own replies).
    pub fn tag(&self) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("lp{:08x}{n:x}", self.salt)
    }
}

/// The deterministic branch of a request forwarded statelessly (an ACK
/// for a 2xx, RFC 3261 16.11): the same incoming branch always gives the
/// same outgoing one, so retransmissions stay one transaction downstream.
pub fn stateless_branch(incoming: &str, lh: u64) -> String {
    format!("{BRANCH_PREFIX}s{:x}.{lh:x}", fnv(&[incoming]))
}

/// The loop hash carried by one of our branches.
fn hash_of_branch(branch: &str) -> Option<u64> {
    let rest = branch.strip_prefix(BRANCH_PREFIX)?;
    let (_, h) = rest.rsplit_once('.')?;
    u64::from_str_radix(h, 16).ok()
}

/// Whether `req` has looped (RFC 3261 16.3 item 4): one of its Vias was
/// written by us (`ours(via)`) with a branch carrying the same loop hash.
pub fn looped(req: &SipMessage, lh: u64, ours: impl Fn(&Via) -> bool) -> bool {
    req.vias()
        .into_iter()
        .filter_map(|v| Via::parse(v).ok())
        .any(|via| ours(&via) && via.branch().and_then(hash_of_branch) == Some(lh))
}

/// A final outcome of one branch, as a candidate for the response the
/// caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A real final response with this status.
    Final(u16),
    /// No (final) response in time: counts as 408.
    Timeout,
    /// Could not be sent: counts as 503.
    Unreachable,
}

impl Outcome {
    /// The status this outcome stands for.
    pub fn status(self) -> u16 {
        match self {
            Outcome::Final(s) => s,
            Outcome::Timeout => 408,
            Outcome::Unreachable => 503,
        }
    }
}

/// The best of `outcomes` (RFC 3261 16.7 item 6): any 6xx, else the
/// lowest class; within a class, real responses before synthetic ones,
/// then the first received. `None` when empty.
pub fn best(outcomes: &[Outcome]) -> Option<usize> {
    let rank = |o: Outcome| {
        let class = o.status() / 100;
        let class = if class == 6 { 0 } else { class };
        (class, !matches!(o, Outcome::Final(_)))
    };
    outcomes
        .iter()
        .enumerate()
        .min_by_key(|(i, o)| (rank(**o), *i))
        .map(|(i, _)| i)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    fn invite(ruri: &str, vias: &[&str]) -> SipMessage {
        let mut s = format!("INVITE {ruri} SIP/2.0\r\n");
        for v in vias {
            s.push_str(&format!("Via: {v}\r\n"));
        }
        s.push_str(
            "From: <sip:a@x>;tag=f1\r\nTo: <sip:b@x>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\r\n",
        );
        SipMessage::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn branches_are_unique_cookie_prefixed_and_carry_the_loop_hash() {
        let g = BranchGen::new(0xabcd);
        let a = g.next(0x1234, "192.0.2.1:5060");
        let b = g.next(0x1234, "192.0.2.1:5060");
        assert_ne!(a, b);
        assert!(a.starts_with("z9hG4bK"));
        assert_eq!(hash_of_branch(&a), Some(0x1234));
        assert!(g.vouches(&a, "192.0.2.1:5060"));
        assert!(!g.vouches(&a, "192.0.2.66:5060"), "another relay target");
        assert!(
            !BranchGen::new(0xabcd).vouches(&a, "192.0.2.1:5060"),
            "another process's key"
        );
        for bad in ["", "z9hG4bK-lp1", "z9hG4bK-lpx.y.z", "z9hG4bKother.1.2"] {
            assert!(!g.vouches(bad, "192.0.2.1:5060"), "{bad}");
        }
        assert_eq!(
            stateless_branch("z9hG4bK1", 7),
            stateless_branch("z9hG4bK1", 7)
        );
        assert_ne!(
            stateless_branch("z9hG4bK1", 7),
            stateless_branch("z9hG4bK2", 7)
        );
        assert_ne!(g.tag(), g.tag());
    }

    #[test]
    fn a_request_back_with_our_via_and_same_hash_has_looped_a_spiral_has_not() {
        let first = invite(
            "sip:1000@farm",
            &["SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKphone"],
        );
        let lh = loop_hash(&first);
        let g = BranchGen::new(1);
        let ours = format!("SIP/2.0/UDP 10.0.0.1:5060;branch={}", g.next(lh, ""));
        let ours_fn = |v: &Via| v.host == "10.0.0.1" && v.port == Some(5060);
        let back = invite(
            "sip:1000@farm",
            &[
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKbox",
                &ours,
                "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKphone",
            ],
        );
        assert!(looped(&back, loop_hash(&back), ours_fn));
        let spiral = invite(
            "sip:1000@box2",
            &[
                "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKbox",
                &ours,
                "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKphone",
            ],
        );
        assert!(!looped(&spiral, loop_hash(&spiral), ours_fn));
        // Same hash but someone else's Via: not ours, not a loop.
        assert!(!looped(&back, loop_hash(&back), |_| false));
        assert!(!looped(&first, lh, ours_fn));
    }

    #[test]
    fn best_response_prefers_6xx_then_lowest_class_real_first() {
        use Outcome::*;
        assert_eq!(best(&[]), None);
        assert_eq!(best(&[Final(486), Final(603), Final(302)]), Some(1));
        assert_eq!(best(&[Final(503), Final(486), Final(404)]), Some(1));
        assert_eq!(best(&[Timeout, Final(486)]), Some(1));
        assert_eq!(best(&[Unreachable, Timeout]), Some(1));
        assert_eq!(best(&[Unreachable, Unreachable]), Some(0));
        assert_eq!(best(&[Unreachable, Final(500)]), Some(1));
        assert_eq!(Timeout.status(), 408);
        assert_eq!(Unreachable.status(), 503);
    }
}
