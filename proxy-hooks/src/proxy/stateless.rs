//! The stateless paths of the proxy (RFC 3261 16.11): an ACK for a 2xx
//! forwarded end to end with a branch derived from the incoming one, and
//! responses: to their client transaction, to the health prober or the
//! keepalives, or, for
//! a stray 2xx to an INVITE whose top Via this proxy wrote, relayed
//! upstream by the next Via.

use std::sync::Arc;

use super::addr::{Hop, relay_key, resolve, resolve_now, response_hop};
use super::core::{Core, sender};
use super::ids::{BRANCH_PREFIX, stateless_branch};
use super::router::{Dest, Flow};
use super::stats::DropReason;
use super::txn::Event;
use crate::sip::SipMessage;

/// An ACK for a 2xx: end to end, forwarded statelessly (RFC 3261 16.11)
/// with a branch derived from the incoming one.
pub(crate) async fn forward_ack(
    core: &Arc<Core>,
    msg: SipMessage,
    dest: Dest,
    lh: u64,
    flow: Flow,
) {
    let incoming = msg
        .top_via()
        .ok()
        .and_then(|v| v.branch().map(str::to_string))
        .unwrap_or_default();
    let branch = stateless_branch(&incoming, lh);
    match resolve_now(&dest) {
        Some(Ok(hop)) => send_ack(core, hop, msg, &branch).await,
        Some(Err(e)) => {
            tracing::debug!(peer = %flow.source, error = %e, "proxy: ACK has nowhere to go")
        }
        None => {
            let core = core.clone();
            tokio::spawn(async move {
                match resolve(&dest).await {
                    Ok(hop) => send_ack(&core, hop, msg, &branch).await,
                    Err(e) => tracing::debug!(error = %e, "proxy: ACK has nowhere to go"),
                }
            });
        }
    }
}

async fn send_ack(core: &Arc<Core>, hop: Hop, mut msg: SipMessage, branch: &str) {
    msg.headers.prepend("Via", &core.me.via(&hop, branch));
    hop.frame(&mut msg);
    core.send_from_loop(hop, msg.to_bytes(), "ACK").await;
}

pub(crate) async fn on_response(core: &Arc<Core>, mut msg: SipMessage, from: &Flow) {
    // A response not by the book (version, status code, Content-Length
    // longer than the datagram: RFC 3261 18.3 says discard) goes nowhere.
    if let Some(f) = msg.fault() {
        tracing::debug!(reason = f.reason, "proxy: faulty response dropped");
        core.stats.drop_one(DropReason::Malformed);
        return;
    }
    // Without a CSeq nothing can match it to a transaction (RFC 3261 17.1.3).
    if msg.cseq().is_err() {
        tracing::debug!("proxy: response without a readable CSeq dropped");
        core.stats.drop_one(DropReason::Malformed);
        return;
    }
    if let Some(h) = core.health.get()
        && h.on_response(&msg)
    {
        return;
    }
    if let Some(k) = core.keepalive.get()
        && k.on_response(&msg, from)
    {
        return;
    }
    let Ok(via) = msg.top_via() else {
        core.stats.drop_one(DropReason::Malformed);
        return;
    };
    let Some(branch) = via.branch().filter(|b| b.starts_with(BRANCH_PREFIX)) else {
        core.stats.drop_one(DropReason::Unmatched);
        return;
    };
    if let Some(tx) = sender(&core.clients, branch) {
        if tx.try_send(Event::Response(Box::new(msg))).is_err() {
            core.stats.drop_one(DropReason::Overload);
        }
        return;
    }
    // A stray: a 2xx to an INVITE whose transaction is gone (retransmitted
    // by the UAS until it gets its ACK) still goes upstream (RFC 3261 16.7
    // item 5), but only when we wrote its top Via: our address, and a
    // branch whose keyed hash vouches for the next Via (where it would be
    // relayed). Anything else would make us a reflector for forged 2xx.
    let is_2xx_invite = msg.status().is_some_and(|s| (200..300).contains(&s))
        && msg.cseq().is_ok_and(|(_, m)| m == "INVITE");
    if !is_2xx_invite {
        core.stats.drop_one(DropReason::Unmatched);
        return;
    }
    msg.pop_via();
    let next = msg.top_via().ok();
    if !core.me.is_our_via(&via) || !core.ids.vouches(branch, &relay_key(next.as_ref())) {
        tracing::debug!(via.host = %via.host, "proxy: stray 2xx with a Via we did not write, dropped");
        core.stats.stray();
        return;
    }
    let Some(hop) = next.and_then(|v| response_hop(&v, None)) else {
        core.stats.drop_one(DropReason::Malformed);
        return;
    };
    if let Some(s) = msg.status() {
        core.stats.relayed(s);
    }
    hop.frame(&mut msg);
    core.send_from_loop(hop, msg.to_bytes(), "stray 2xx").await;
}
