//! Rule 3: feature codes go where the thing they name lives.
//!
//! * `*8`: the caller's pickup groups (`member:` of From user@domain) ->
//!   the node of the newest *ringing* call of any of them; if none rings,
//!   the newest answered one. FreeSWITCH's vanilla `intercept` takes the
//!   group's last dialled call on that box, which is in practice the
//!   ringing one; across boxes, preferring ringing calls sends `*8` where
//!   there is something to answer rather than to a talk to steal.
//! * `**EXT`, `*4EXT`: the node where EXT has rung longest (the oldest
//!   ringing call: the caller who has waited most is picked up first).
//! * valet: the node holding the slot; else the node holding most of the
//!   lot (so `6000`-style "which slot?" retrieval and new parks stay with
//!   the lot); else a placement of the lot.
//! * conference room, queue: the node hosting it (most members or waiting
//!   callers first); else a placement, so the first two joiners meet.
//!
//! A placement is the tenant's node when the domain is pinned, else the
//! rendezvous hash of `{domain}/{name}` over the nodes taking new work,
//! identical on every proxy. Pickups that find nothing fall through
//! (`Err(rule)`), to the tenant or standard rules; the box's dialplan then
//! says there is nothing to pick up.

use std::sync::Arc;

use crate::routing::engine::{Engine, fresh, ranked, up};
use crate::routing::features::Feature;
use crate::routing::request::{Decision, RouteRequest, Rule};
use crate::routing::snapshot::{Count, FarmSnapshot, Node, key};

impl Engine {
    pub(crate) fn locality(
        &self,
        snap: &FarmSnapshot,
        req: &RouteRequest<'_>,
        feature: &Feature,
    ) -> Result<Decision, Rule> {
        let domain = req.ruri_domain;
        match feature {
            Feature::GroupPickup => group_pickup(snap, req).ok_or(Rule::GroupPickup),
            Feature::DirectedPickup { ext } => {
                let found = up(snap, snap.ringing(domain, ext).iter().map(|r| r.node));
                if found.is_empty() {
                    return Err(Rule::DirectedPickup);
                }
                Ok(Decision::new(
                    found,
                    Rule::DirectedPickup,
                    "extension ringing",
                ))
            }
            Feature::Valet { lot, slot } => {
                if let Some(slot) = slot {
                    let held = up(snap, snap.slot(domain, lot, slot).iter().copied());
                    if !held.is_empty() {
                        return Ok(Decision::new(held, Rule::Valet, "slot held"));
                    }
                }
                self.hosted(snap, domain, lot, snap.lot(domain, lot), Rule::Valet)
            }
            Feature::Conference { room } => self.hosted(
                snap,
                domain,
                room,
                snap.room(domain, room),
                Rule::Conference,
            ),
            Feature::Queue { queue } => {
                self.hosted(snap, domain, queue, snap.queue(domain, queue), Rule::Queue)
            }
        }
    }

    /// The nodes holding `name` (most first), else its placement.
    fn hosted(
        &self,
        snap: &FarmSnapshot,
        domain: &str,
        name: &str,
        counts: &[Count],
        rule: Rule,
    ) -> Result<Decision, Rule> {
        let held = up(snap, counts.iter().map(|c| c.node));
        if !held.is_empty() {
            return Ok(Decision::new(held, rule, "held here"));
        }
        let (targets, reason) = self.placement(snap, domain, name);
        if targets.is_empty() {
            return Err(rule);
        }
        Ok(Decision::new(targets, rule, reason))
    }

    /// Where a new `{domain}/{name}` goes: the tenant's node, else the
    /// rendezvous owner (then the next owners, as failover).
    fn placement(
        &self,
        snap: &FarmSnapshot,
        domain: &str,
        name: &str,
    ) -> (Vec<Arc<Node>>, &'static str) {
        if let Some((targets, _)) = self.tenant(snap, domain) {
            return (targets, "placed on the tenant node");
        }
        (
            ranked(snap, &key(domain, name), &fresh(snap)),
            "placed by hash",
        )
    }
}

/// `*8`: merges the calls of every group of the caller, best first.
fn group_pickup(snap: &FarmSnapshot, req: &RouteRequest<'_>) -> Option<Decision> {
    // The From host may be the proxy's address (phones configured with it
    // as their server): then the dialled domain names the tenant.
    let (domain, groups) = [req.from_domain, req.ruri_domain]
        .into_iter()
        .map(|d| (d, snap.groups_of(d, req.from_user)))
        .find(|(_, g)| !g.is_empty())?;
    let mut calls: Vec<_> = groups
        .iter()
        .flat_map(|g| snap.group_calls(domain, g).iter())
        .filter(|c| snap.node(c.node).is_some_and(|n| n.up))
        .collect();
    calls.sort_by_key(|c| std::cmp::Reverse((c.ringing, c.since_ms)));
    let best = calls.first()?;
    let reason = if best.ringing {
        "group call ringing"
    } else {
        "group call answered"
    };
    let targets = up(snap, calls.iter().map(|c| c.node));
    Some(Decision::new(targets, Rule::GroupPickup, reason))
}
