//! Rendezvous (highest random weight) hashing: every place where a key (an
//! AOR, a room, a lot, a tenant, a Call-ID) is put on a node.
//!
//! Each (key, node) pair gets a pseudo-random score and the key goes to the
//! node with the highest one. Unlike `hash % N` (Kamailio's and OpenSIPS'
//! dispatchers), adding a node moves only the keys the new node wins (about
//! 1/(N+1) of them) and removing one moves only that node's keys, so every
//! proxy agrees without coordination and a farm change disturbs little.
//!
//! The hash is FNV-1a 64 followed by the MurmurHash3 `fmix64` finaliser:
//! fixed, fast, non-cryptographic and the same in every process, build and
//! version (never `RandomState`, which is seeded per process). Changing it
//! would move every registration and room: a test pins known values.

use locus_schema::NodeId;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// FNV-1a, 64 bits.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// MurmurHash3's 64-bit finaliser: a bijection with full avalanche, so the
/// XOR of two hashes below still yields independent-looking scores.
fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    h
}

/// The hash of a key or of a node id (compute once, score many).
pub fn hash(s: &str) -> u64 {
    fmix64(fnv1a64(s.as_bytes()))
}

/// The score of a (key, node) pair from their hashes; highest wins.
pub fn score(key_hash: u64, node_hash: u64) -> u64 {
    fmix64(key_hash ^ node_hash.rotate_left(32))
}

/// The weighted score: `weight / -ln(u)` with `u` uniform in (0, 1) from
/// the pair's score. Each node then wins a share of keys proportional to
/// its weight, and adding or removing a node still moves only its keys.
/// A weight of 0 never wins against a positive one.
pub fn weighted_score(key_hash: u64, node_hash: u64, weight: u32) -> f64 {
    // 53 bits fill an f64 mantissa exactly; +0.5 keeps u strictly inside (0, 1).
    let top = (score(key_hash, node_hash) >> 11) as f64;
    let u = (top + 0.5) / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

/// The node that owns `key`, or `None` when there are no nodes. Ties (which
/// need a 64-bit collision) go to the smaller node id, so the result never
/// depends on iteration order.
pub fn pick<'a>(key: &str, nodes: impl Iterator<Item = &'a NodeId>) -> Option<&'a NodeId> {
    let k = hash(key);
    nodes
        .map(|n| (score(k, hash(n.as_str())), n))
        .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)))
        .map(|(_, n)| n)
}

/// Like [`pick`], with a weight per node (see [`weighted_score`]). Nodes of
/// weight 0 are only chosen when every node has weight 0.
pub fn pick_weighted<'a>(
    key: &str,
    nodes: impl Iterator<Item = (&'a NodeId, u32)>,
) -> Option<&'a NodeId> {
    let k = hash(key);
    nodes
        .map(|(n, w)| {
            let h = hash(n.as_str());
            (weighted_score(k, h, w), score(k, h), n)
        })
        .max_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then_with(|| a.1.cmp(&b.1))
                .then_with(|| b.2.cmp(a.2))
        })
        .map(|(_, _, n)| n)
}

/// Every node ordered by preference for `key` (the owner first, then the
/// node that would own it without the owner, ...): a failover list that all
/// proxies agree on.
pub fn rank<'a>(key: &str, nodes: impl Iterator<Item = &'a NodeId>) -> Vec<&'a NodeId> {
    let k = hash(key);
    let mut scored: Vec<(u64, &NodeId)> = nodes.map(|n| (score(k, hash(n.as_str())), n)).collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.into_iter().map(|(_, n)| n).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn ids(n: usize) -> Vec<NodeId> {
        (1..=n)
            .map(|i| NodeId::new(format!("fs{i}")).unwrap())
            .collect()
    }

    fn keys() -> Vec<String> {
        (0..10_000).map(|i| format!("{i}@d.example.com")).collect()
    }

    fn owners(nodes: &[NodeId]) -> Vec<NodeId> {
        keys()
            .iter()
            .map(|k| pick(k, nodes.iter()).unwrap().clone())
            .collect()
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn placement_is_pinned_across_versions() {
        // If this fails, the hash changed: every proxy of a mixed-version
        // farm would disagree on where AORs and rooms live.
        let nodes = ids(3);
        let got: Vec<&str> = ["1001@d.example.com", "d.example.com/3001", "t1.example.com"]
            .iter()
            .map(|k| pick(k, nodes.iter()).unwrap().as_str())
            .collect();
        // Values from an independent implementation of the same formulas.
        assert_eq!(got, ["fs3", "fs2", "fs2"]);
        let s = score(hash("1001@d.example.com"), hash("fs1"));
        assert_eq!(s, 0x0e8a_6385_1053_c652);
    }

    #[test]
    fn deterministic_and_order_independent() {
        let nodes = ids(4);
        let mut reversed = nodes.clone();
        reversed.reverse();
        assert_eq!(owners(&nodes), owners(&reversed));
        assert!(pick("x", std::iter::empty()).is_none());
    }

    #[test]
    fn keys_spread_evenly() {
        let nodes = ids(5);
        let mut count: HashMap<NodeId, usize> = HashMap::new();
        for o in owners(&nodes) {
            *count.entry(o).or_default() += 1;
        }
        for n in &nodes {
            let share = count[n] as f64 / 10_000.0;
            assert!((share - 0.2).abs() < 0.025, "{n}: {share}");
        }
    }

    #[test]
    fn adding_a_node_moves_about_one_in_n_plus_one_to_it() {
        let before = ids(5);
        let after = ids(6);
        let (a, b) = (owners(&before), owners(&after));
        let moved: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        let share = moved.len() as f64 / a.len() as f64;
        assert!((share - 1.0 / 6.0).abs() < 0.02, "moved {share}");
        // Every moved key went to the new node, none between old ones.
        assert!(moved.iter().all(|&i| b[i].as_str() == "fs6"));
    }

    #[test]
    fn removing_a_node_moves_only_its_keys() {
        let before = ids(6);
        let after: Vec<NodeId> = before
            .iter()
            .filter(|n| n.as_str() != "fs4")
            .cloned()
            .collect();
        let (a, b) = (owners(&before), owners(&after));
        for i in 0..a.len() {
            if a[i].as_str() == "fs4" {
                assert_ne!(b[i].as_str(), "fs4");
            } else {
                assert_eq!(a[i], b[i], "key {i} moved off a surviving node");
            }
        }
    }

    #[test]
    fn rank_starts_with_the_owner_and_lists_every_node_once() {
        let nodes = ids(4);
        for k in keys().iter().take(200) {
            let r = rank(k, nodes.iter());
            assert_eq!(r[0], pick(k, nodes.iter()).unwrap());
            assert_eq!(r.len(), 4);
            // The second choice is the owner once the first is gone.
            let rest: Vec<NodeId> = nodes.iter().filter(|n| *n != r[0]).cloned().collect();
            assert_eq!(r[1], pick(k, rest.iter()).unwrap());
        }
    }

    #[test]
    fn weights_set_the_share() {
        let nodes = ids(3);
        let weights = [1u32, 2, 5];
        let mut count = [0usize; 3];
        for k in keys() {
            let w = nodes.iter().zip(weights);
            let o = pick_weighted(&k, w).unwrap();
            count[nodes.iter().position(|n| n == o).unwrap()] += 1;
        }
        for (i, w) in weights.iter().enumerate() {
            let share = count[i] as f64 / 10_000.0;
            let want = f64::from(*w) / 8.0;
            assert!((share - want).abs() < 0.025, "{i}: {share} vs {want}");
        }
        let zero = nodes.iter().zip([0u32, 0, 1]);
        assert_eq!(pick_weighted("k", zero).unwrap().as_str(), "fs3");
    }
}
