//! 100 concurrent `*8` from members of many groups ringing on different
//! nodes: every one must land on the node of its group's newest ringing
//! call (counted: 100%).

#![allow(clippy::unwrap_used)] // tests may unwrap

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use locus_proxy::{RouteRequest, Rule};
use locus_schema::CallState;
use support::{D, Farm, Setup};

const NODES: [&str; 3] = ["fs1", "fs2", "fs3"];
const GROUPS: usize = 20;

#[test]
fn concurrent_group_pickups_all_land_on_the_right_node() {
    let mut f = Farm::with_nodes(&NODES);
    let mut expected = Vec::new();
    for g in 0..GROUPS {
        let group = format!("g{g}");
        // Per group: an older ringing call, the newest ringing call, and a
        // still newer answered call, on three different nodes that rotate
        // with the group number.
        let (old, new, talk) = (NODES[g % 3], NODES[(g + 1) % 3], NODES[(g + 2) % 3]);
        let t = 1_000 * g as u64;
        f.group_call(old, &group, &format!("o{g}"), CallState::Ringing, t + 10);
        f.group_call(new, &group, &format!("n{g}"), CallState::Early, t + 20);
        f.group_call(talk, &group, &format!("t{g}"), CallState::Answered, t + 30);
        expected.push(new);
    }
    for caller in 0..100 {
        f.member(
            &format!("{}", 2000 + caller),
            &[&format!("g{}", caller % GROUPS)],
        );
    }
    let s = Setup::vanilla(&f);
    let right = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for caller in 0..100usize {
            let (s, right, expected) = (&s, &right, &expected);
            scope.spawn(move || {
                let from = format!("{}", 2000 + caller);
                let call_id = format!("pickup-{caller}@phone");
                let d = s.route(&RouteRequest::invite("*8", D, &from, &call_id));
                if d.rule == Rule::GroupPickup && d.ids()[0] == expected[caller % GROUPS] {
                    right.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    assert_eq!(right.load(Ordering::Relaxed), 100);
}
