//! The box's timers: a 2xx to an INVITE is retransmitted until its ACK
//! (RFC 3261 13.3.1.4: T1 doubling up to T2, giving up after 64*T1), the
//! box's own INVITE until any response (17.1.1.2, timer A), and
//! a scripted [`super::Answer::Ring`] proceeds after its delay. Both stop
//! with the simulator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::dialog::Phase;
use super::endpoint::Endpoint;

const T1: Duration = Duration::from_millis(500);
const T2: Duration = Duration::from_secs(4);
/// 64*T1 in total: at most this many retransmissions.
const TRIES: u32 = 7;

/// Resends `ok` to `to` until the dialog `call_id` is ACKed or gone.
pub(super) fn retransmit_until_ack(ep: &Arc<Endpoint>, call_id: String, ok: Bytes, to: SocketAddr) {
    let ep2 = ep.clone();
    ep.shared.tracker.spawn(async move {
        let mut wait = T1;
        for _ in 0..TRIES {
            tokio::select! {
                biased;
                () = ep2.shared.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let pending = ep2.state().dialogs.get(&call_id).is_some_and(|d| {
                d.phase == Phase::Confirmed && !d.acked && d.last.as_ref() == Some(&ok)
            });
            if !pending {
                return;
            }
            ep2.send_all(vec![(ok.clone(), to)]).await;
            wait = (wait * 2).min(T2);
        }
        tracing::debug!(sip.call_id = %call_id, "no ACK for the 200");
    });
}

/// Resends the box's INVITE `call_id` to `to` until a response arrives
/// (timer A: T1 doubling); the INVITE then simply goes unanswered.
pub(super) fn retransmit_invite(
    ep: &Arc<Endpoint>,
    call_id: String,
    invite: Bytes,
    to: SocketAddr,
) {
    let ep2 = ep.clone();
    ep.shared.tracker.spawn(async move {
        let mut wait = T1;
        for _ in 0..TRIES {
            tokio::select! {
                biased;
                () = ep2.shared.stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            let pending = ep2
                .state()
                .dialogs
                .get(&call_id)
                .is_some_and(|d| d.phase == Phase::Early && !d.acked);
            if !pending {
                return;
            }
            ep2.send_all(vec![(invite.clone(), to)]).await;
            wait *= 2;
        }
    });
}

/// Routes the INVITE `call_id` after `after` (a scripted ringing time),
/// unless it was cancelled meanwhile.
pub(super) fn proceed_after(ep: &Arc<Endpoint>, call_id: String, after: Duration) {
    let ep2 = ep.clone();
    ep.shared.tracker.spawn(async move {
        tokio::select! {
            biased;
            () = ep2.shared.stop.cancelled() => return,
            () = tokio::time::sleep(after) => {}
        }
        let out = {
            let mut st = ep2.state();
            ep2.proceed(&mut st, &call_id)
        };
        ep2.send_all(out).await;
    });
}
