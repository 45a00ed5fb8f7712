//! Group pickup (`*8`) through `locus proxy` with real sipp phones: many
//! pickup groups ring on different boxes at once, a member of each group
//! dials `*8` at the same moment, and every `*8` must reach the box where
//! its own group rings (and pick the call up there).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::collections::BTreeMap;

use locus_sim::Directory;
use support::DOMAIN;
use support::locality::{InjectionFile, calm_health, invites_where, node_name};
use support::sipfarm::start_sip_farm_dir;
use support::sipp::{Sipp, sipp_bin};

/// Boxes in the farm.
const BOXES: usize = 3;
/// Pickup groups, each ringing once per round.
const GROUPS: usize = 20;
/// Rounds of simultaneous `*8`s; a group's ringing call moves to the next
/// box every round.
const ROUNDS: usize = 5;

/// Group `g`'s name.
fn group(g: usize) -> String {
    format!("pg{g:02}")
}

/// Member `m` of group `g`: 0 is rung, 1 calls, 2.. pick up (one per round).
fn member(g: usize, m: usize) -> String {
    format!("4{g:02}{m}")
}

/// The box where group `g` rings in round `r`.
fn box_of(g: usize, r: usize) -> String {
    format!("fs{}", (g + r) % BOXES + 1)
}

/// Every group's members, all in that one pickup group.
fn directory() -> Directory {
    let users: Vec<(String, String)> = (0..GROUPS)
        .flat_map(|g| (0..2 + ROUNDS).map(move |m| (member(g, m), group(g))))
        .collect();
    Directory::from_groups(users.iter().map(|(u, g)| (u.as_str(), Some(g.as_str()))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_group_pickups_land_where_their_group_rings() {
    if sipp_bin().is_none() {
        eprintln!("sipp not installed: skipped");
        return;
    }
    let farm = start_sip_farm_dir(BOXES, directory(), calm_health).await;

    // Pickers register (ESL `sofia::register` with their callgroup), spread
    // over the boxes; the agents publish `members` claims for the proxy.
    let mut expected: BTreeMap<String, String> = BTreeMap::new();
    for r in 0..ROUNDS {
        for g in 0..GROUPS {
            let picker = member(g, 2 + r);
            let at = format!("fs{}", (g * ROUNDS + r) % BOXES + 1);
            farm.sim(&at).register(&picker).await.unwrap();
            expected.insert(picker, box_of(g, r));
        }
    }
    farm.wait_view("every picker's pickup group", |snap| {
        (0..ROUNDS)
            .all(|r| (0..GROUPS).all(|g| snap.groups_of(DOMAIN, &member(g, 2 + r)) == [group(g)]))
    })
    .await;

    for r in 0..ROUNDS {
        for g in 0..GROUPS {
            farm.sim(&box_of(g, r))
                .call(&member(g, 1), &member(g, 0))
                .await
                .unwrap();
        }
        farm.wait_view("each group ringing on its box", |snap| {
            (0..GROUPS).all(|g| {
                let calls = snap.group_calls(DOMAIN, &group(g));
                let ringing: Vec<String> = calls
                    .iter()
                    .filter(|c| c.ringing)
                    .map(|c| node_name(snap, c.node))
                    .collect();
                ringing == [box_of(g, r)]
            })
        })
        .await;

        let pickers: Vec<String> = (0..GROUPS).map(|g| member(g, 2 + r)).collect();
        let inf = InjectionFile::new(&pickers);
        let mut run = Sipp::new("phones_call.xml", farm.proxy_udp()).key("domain", DOMAIN);
        run.service = "*8".into();
        run.calls = GROUPS as u32;
        run.rate = 200; // all in flight together
        run.hold_ms = 300;
        run.extra = inf.args();
        let res = run.run().await;
        let landed = landed_by_caller(&farm);
        let wrong: Vec<_> = pickers
            .iter()
            .filter(|p| landed.get(*p) != Some(&vec![expected[*p].clone()]))
            .map(|p| (p, &expected[p], landed.get(p)))
            .collect();
        assert!(
            wrong.is_empty(),
            "round {r}: misrouted (picker, expected, got): {wrong:?}"
        );
        // A `*8` on a box where its group does not ring is answered and
        // hung up at once (BYE before the phone's), which sipp counts as a
        // failed call.
        let calls: Vec<_> = farm
            .nodes
            .iter()
            .map(|n| (n.id.clone(), n.sim.calls()))
            .collect();
        assert_eq!(
            res.code,
            Some(0),
            "round {r}: sipp: {}\ncalls: {calls:?}",
            res.log
        );
        assert_eq!(res.ok, GROUPS as u64, "round {r}: {}", res.log);
        for n in &farm.nodes {
            let left: Vec<_> = n.sim.calls().into_iter().filter(|c| !c.answered).collect();
            assert!(left.is_empty(), "round {r}: {} still rings: {left:?}", n.id);
        }
    }

    // Count where every `*8` went, by its caller.
    let seen = invites_where(&farm, |s| s.ruri_user.as_deref() == Some("*8"));
    let landed = landed_by_caller(&farm);
    let right = expected
        .iter()
        .filter(|(picker, at)| landed.get(*picker).is_some_and(|l| l == &[at.to_string()]))
        .count();
    let total: usize = seen.values().map(Vec::len).sum();
    let per_box: Vec<(&String, usize)> = seen.iter().map(|(k, v)| (k, v.len())).collect();
    eprintln!(
        "*8 pickups: {right}/{} on their group's box, {total} INVITEs, per box {per_box:?}",
        expected.len()
    );
    assert_eq!(expected.len(), GROUPS * ROUNDS);
    assert_eq!(total, GROUPS * ROUNDS, "{landed:?}");
    assert_eq!(
        right,
        GROUPS * ROUNDS,
        "expected {expected:?}, landed {landed:?}"
    );
    farm.stop_proxy().await;
}

/// The boxes each `*8` caller's INVITEs reached.
fn landed_by_caller(farm: &support::sipfarm::SipFarm) -> BTreeMap<String, Vec<String>> {
    let mut landed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, invites) in invites_where(farm, |s| s.ruri_user.as_deref() == Some("*8")) {
        for s in invites {
            let from = s.from_user.clone().unwrap_or_default();
            landed.entry(from).or_default().push(node.clone());
        }
    }
    landed
}
