//! [`SimHandle`]: the scripting API of a running simulator. Every action
//! runs to completion under the core lock, so its events go out as one
//! ordered burst, exactly as one FreeSWITCH action would produce them.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::DropGuard;

use crate::bus::Notice;
use crate::error::SimError;
use crate::scripts::conference::MemberId;
use crate::scripts::register::EXPIRES;
use crate::scripts::{CallId, CallInfo, ChannelInfo};
use crate::server::Shared;
use crate::sip::{Answer, Endpoint, Health, SipBinding, SipSeen};
use crate::state::{Core, Load};

/// How [`SimHandle::disconnect_all`] ends the ESL connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisconnectKind {
    /// The `exit` goodbye notice, then close; the box stays up.
    Exit,
    /// "The system is being shut down." notice, then close; the box stays up.
    Shutdown,
    /// Close without a notice; the box stays up.
    Eof,
    /// The process is killed: close without a notice and stop accepting
    /// until [`SimHandle::restart`] (or [`SimHandle::listen`]).
    Kill,
}

/// Handle to a running simulator; clones share it. Dropping the last clone
/// stops the simulator.
#[derive(Clone, Debug)]
pub struct SimHandle {
    pub(crate) shared: Arc<Shared>,
    sip: Option<Arc<Endpoint>>,
    _guard: Arc<DropGuard>,
}

impl SimHandle {
    pub(crate) fn new(shared: Arc<Shared>, sip: Option<Arc<Endpoint>>) -> Self {
        let guard = shared.stop.clone().drop_guard();
        Self {
            shared,
            sip,
            _guard: Arc::new(guard),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Core) -> T) -> T {
        f(&mut self.shared.core())
    }

    /// The ESL address to connect to.
    pub fn esl_addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The bound SIP (UDP) address, when the box answers SIP.
    pub fn sip_addr(&self) -> Option<SocketAddr> {
        self.sip.as_ref().map(|s| s.local)
    }

    /// How the box answers OPTIONS from now on.
    pub fn set_sip_health(&self, health: Health) {
        if let Some(s) = &self.sip {
            s.state().health = health;
        }
    }

    /// How the box answers new INVITEs from now on.
    pub fn set_sip_answer(&self, answer: Answer) {
        if let Some(s) = &self.sip {
            s.state().answer = answer;
        }
    }

    /// SIP requests received so far, oldest first (the last 10,000).
    pub fn sip_received(&self) -> Vec<SipSeen> {
        self.sip
            .as_ref()
            .map(|s| s.state().seen.clone())
            .unwrap_or_default()
    }

    /// The box hangs up the SIP dialog `call_id` (BYE, or 487 / CANCEL
    /// while unanswered), with its ESL legs and the dialog bridged to it;
    /// `false` when there is no such dialog.
    pub async fn sip_hangup(&self, call_id: &str) -> bool {
        match &self.sip {
            Some(s) => s.hang_up(call_id).await,
            None => false,
        }
    }

    /// The box sends INVITE `sip:to@domain` from `from` to its proxy on its
    /// own (a scripted outbound call: no caller's leg, no ESL events); a
    /// 2xx is ACKed and hung up (BYE) at once. Returns the Call-ID; `None`
    /// without SIP, without a proxy, or when `to` makes no URI.
    pub async fn sip_call(&self, from: &str, to: &str) -> Option<String> {
        match &self.sip {
            Some(s) => s.call_out(from, to, false).await,
            None => None,
        }
    }

    /// Like [`sip_call`](Self::sip_call), but the answered call stays up
    /// (re-INVITE it with [`sip_reinvite`](Self::sip_reinvite), end it with
    /// [`sip_hangup`](Self::sip_hangup)).
    pub async fn sip_call_held(&self, from: &str, to: &str) -> Option<String> {
        match &self.sip {
            Some(s) => s.call_out(from, to, true).await,
            None => None,
        }
    }

    /// The box re-INVITEs the far end of its confirmed SIP dialog
    /// `call_id` through the dialog's route set (FreeSWITCH does for hold
    /// and session refresh); `false` when there is no such dialog.
    pub async fn sip_reinvite(&self, call_id: &str) -> bool {
        match &self.sip {
            Some(s) => s.reinvite(call_id).await,
            None => false,
        }
    }

    /// The final status of the box's last re-INVITE in dialog `call_id`.
    pub fn sip_reinvite_status(&self, call_id: &str) -> Option<u16> {
        self.sip.as_ref().and_then(|s| {
            s.state()
                .dialogs
                .get(call_id)
                .and_then(|d| d.reinvite.and_then(|(_, got)| got))
        })
    }

    /// The first final status the box received for its INVITE `call_id`.
    pub fn sip_final(&self, call_id: &str) -> Option<u16> {
        self.sip
            .as_ref()
            .and_then(|s| s.state().finals.get(call_id).copied())
    }

    /// `user`'s SIP registration at this box, if any.
    pub fn sip_binding(&self, user: &str) -> Option<SipBinding> {
        self.sip
            .as_ref()
            .and_then(|s| s.state().regs.get(user).cloned())
    }

    /// Whether sofia holds a registration of `user` (its
    /// `sip_registrations` row: gone after an unregister, an expiry or a
    /// `flush_inbound_reg`).
    pub fn registered(&self, user: &str) -> bool {
        self.with(|c| c.feat.regs.contains_key(user))
    }

    /// SIP dialogs the box holds (calls in progress on the SIP side).
    pub fn sip_dialogs(&self) -> usize {
        self.sip.as_ref().map_or(0, |s| s.state().dialogs.len())
    }

    /// The current `Core-UUID` (changes on [`restart`](Self::restart)).
    pub fn core_uuid(&self) -> String {
        self.with(|c| c.core_uuid.clone())
    }

    /// Connected ESL clients.
    pub fn esl_clients(&self) -> usize {
        self.shared.client_count()
    }

    /// `user` registers (`sofia::register`, with its callgroup).
    pub async fn register(&self, user: &str) -> Result<(), SimError> {
        self.with(|c| c.register(user, EXPIRES))
    }

    /// `user` unregisters (`Expires: 0`).
    pub async fn unregister(&self, user: &str) -> Result<(), SimError> {
        self.with(|c| c.unregister(user))
    }

    /// `user`'s registration lapses (`sofia::expire`).
    pub async fn expire(&self, user: &str) -> Result<(), SimError> {
        self.with(|c| c.expire(user))
    }

    /// `from` calls `to`; returns once `to` rings.
    pub async fn call(&self, from: &str, to: &str) -> Result<CallId, SimError> {
        self.with(|c| c.call(from, to)).map(CallId)
    }

    /// The callee answers; the legs are bridged.
    pub async fn answer(&self, call: &CallId) -> Result<(), SimError> {
        self.with(|c| c.answer(&call.0))
    }

    /// The head leg of the call hangs up (then its peer).
    pub async fn hangup(&self, call: &CallId) -> Result<(), SimError> {
        self.with(|c| c.hangup(&call.0))
    }

    /// The caller puts the call on hold.
    pub async fn hold(&self, call: &CallId) -> Result<(), SimError> {
        self.with(|c| c.hold(&call.0))
    }

    /// The caller resumes the call.
    pub async fn unhold(&self, call: &CallId) -> Result<(), SimError> {
        self.with(|c| c.unhold(&call.0))
    }

    /// `picker` dials `*8` and picks up `group`'s ringing call.
    pub async fn intercept_group(&self, picker: &str, group: &str) -> Result<CallId, SimError> {
        self.with(|c| c.intercept_group(picker, group)).map(CallId)
    }

    /// `picker` dials `**ext` and picks up the call ringing there.
    pub async fn intercept_ext(&self, picker: &str, ext: &str) -> Result<CallId, SimError> {
        self.with(|c| c.intercept_ext(picker, ext)).map(CallId)
    }

    /// `caller` dials `slot` and is parked in `lot`.
    pub async fn valet_park(
        &self,
        caller: &str,
        lot: &str,
        slot: &str,
    ) -> Result<CallId, SimError> {
        self.with(|c| c.valet_park(caller, lot, slot)).map(CallId)
    }

    /// `retriever` dials `slot` and takes the call parked in `lot`.
    pub async fn valet_retrieve(
        &self,
        retriever: &str,
        lot: &str,
        slot: &str,
    ) -> Result<CallId, SimError> {
        self.with(|c| c.valet_retrieve(retriever, lot, slot))
            .map(CallId)
    }

    /// `caller` dials `room` and joins the conference.
    pub async fn conference_join(&self, caller: &str, room: &str) -> Result<MemberId, SimError> {
        self.with(|c| c.conference_join(caller, room))
    }

    /// The member hangs up.
    pub async fn conference_leave(&self, member: &MemberId) -> Result<(), SimError> {
        self.with(|c| c.hangup(&member.uuid))
    }

    /// `caller` enters call-center `queue` (e.g. `support@default`).
    pub async fn callcenter_enter(&self, caller: &str, queue: &str) -> Result<CallId, SimError> {
        self.with(|c| c.callcenter_enter(caller, queue)).map(CallId)
    }

    /// The queued caller hangs up.
    pub async fn callcenter_leave(&self, call: &CallId) -> Result<(), SimError> {
        self.with(|c| c.hangup(&call.0))
    }

    /// `caller` waits in FIFO `fifo` (`5900` or `5900@domain`).
    pub async fn fifo_push(&self, caller: &str, fifo: &str) -> Result<CallId, SimError> {
        self.with(|c| c.fifo_push(caller, fifo)).map(CallId)
    }

    /// `consumer` takes the oldest caller of `fifo`.
    pub async fn fifo_pop(&self, consumer: &str, fifo: &str) -> Result<CallId, SimError> {
        self.with(|c| c.fifo_pop(consumer, fifo)).map(CallId)
    }

    /// `originate user/<user> &park()`.
    pub async fn originate_park(&self, user: &str) -> Result<CallId, SimError> {
        self.with(|c| c.originate_park(user)).map(CallId)
    }

    /// Fires a HEARTBEAT now.
    pub async fn heartbeat(&self) {
        self.with(Core::heartbeat);
    }

    /// Sets the load figures HEARTBEAT and `status` report.
    pub fn set_load(&self, load: Load) {
        self.with(|c| c.load = load);
    }

    /// Ends every ESL connection the given way.
    pub async fn disconnect_all(&self, kind: DisconnectKind) {
        match kind {
            DisconnectKind::Exit => self.with(|c| c.disconnect_all(Notice::Exit)),
            DisconnectKind::Shutdown => self.with(|c| c.disconnect_all(Notice::Shutdown)),
            DisconnectKind::Eof => self.shared.drop_connections(),
            DisconnectKind::Kill => {
                self.shared.listening.send_replace(false);
                self.shared.drop_connections();
            }
        }
    }

    /// `fsctl shutdown`: SHUTDOWN event, notice to all, listener closed.
    pub async fn shutdown(&self) {
        self.shared.shutdown_box();
    }

    /// FreeSWITCH restarts: connected clients get the shutdown notice, all
    /// calls vanish (no events), a new `Core-UUID`, the listener is back.
    pub async fn restart(&self) {
        self.with(|c| {
            c.disconnect_all(Notice::Shutdown);
            c.restart();
        });
        // SIP dialogs die with the process (no BYE); registrations survive.
        if let Some(s) = &self.sip {
            s.state().dialogs.clear();
        }
        self.shared.listening.send_replace(true);
    }

    /// Accepts connections again after [`DisconnectKind::Kill`], keeping
    /// the calls.
    pub async fn listen(&self) {
        self.shared.listening.send_replace(true);
    }

    /// Snapshot of the calls.
    pub fn calls(&self) -> Vec<CallInfo> {
        self.with(|c| c.call_infos())
    }

    /// Snapshot of the channels.
    pub fn channels(&self) -> Vec<ChannelInfo> {
        self.with(|c| c.channel_infos())
    }

    /// A channel variable, for assertions.
    pub fn var(&self, uuid: &str, name: &str) -> Option<String> {
        self.with(|c| {
            c.chan(uuid)
                .and_then(|ch| ch.vars.get(name))
                .map(str::to_owned)
        })
    }

    /// Runs a `sim ...` text command (as `api sim ...` does) and returns its reply.
    pub fn command(&self, line: &str) -> String {
        self.with(|c| crate::api::control::sim(c, Some(line)))
    }

    /// Stops the simulator: the shutdown notice to every client, then all
    /// tasks end (waiting at most two seconds for slow clients).
    pub async fn stop(&self) {
        self.with(|c| c.disconnect_all(Notice::Shutdown));
        self.shared.stop.cancel();
        self.shared.tracker.close();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(2),
            self.shared.tracker.wait(),
        )
        .await;
    }
}
