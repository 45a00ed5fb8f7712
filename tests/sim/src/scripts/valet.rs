//! Valet parking (capture 05): `valet_park <lot> <slot>` parks the caller
//! (`valet_parking::info` Action `hold`, music on hold); the same number
//! dialled again retrieves it (Action `bridge` with `Bridge-To-UUID`, then
//! `exit`) and bridges the retriever to the parked call.

use crate::channel::{Activity, CsState};
use crate::error::SimError;
use crate::state::{Core, Headers};
use crate::templates::{Origin, at};

impl Core {
    fn valet_event(
        &mut self,
        uuid: &str,
        lot: &str,
        slot: &str,
        action: &str,
        origin: Origin,
        bridge_to: Option<&str>,
    ) {
        let mut pre: Headers = vec![
            ("Valet-Lot-Name", lot.to_owned()),
            ("Valet-Extension", slot.to_owned()),
            ("Action", action.to_owned()),
        ];
        if let Some(b) = bridge_to {
            pre.push(("Bridge-To-UUID", b.to_owned()));
        }
        self.chan_fire(
            uuid,
            "CUSTOM valet_parking::info",
            origin,
            pre,
            true,
            vec![],
        );
    }

    /// `caller` dials `slot` and is parked in `lot`; returns its leg.
    pub fn valet_park(&mut self, caller: &str, lot: &str, slot: &str) -> Result<String, SimError> {
        if self
            .feat
            .valet
            .get(lot)
            .is_some_and(|l| l.contains_key(slot))
        {
            return Err(SimError::BadState {
                call: format!("{lot}/{slot}"),
                state: "occupied".into(),
                action: "park",
            });
        }
        let c = self.new_inbound(caller, slot)?;
        self.dialplan_preamble(&c, caller, slot);
        self.exec_answer(&c);
        self.exec_start(&c, "valet_park", &format!("{lot} {slot}"));
        self.feat
            .valet
            .entry(lot.to_owned())
            .or_default()
            .insert(slot.to_owned(), c.clone());
        let inline = format!(
            "set:valet_ticket={c},set:valet_hold_music='local_stream://moh',sleep:1000,valet_park:{lot} {slot}"
        );
        self.with_chan(&c, |ch| {
            ch.activity = Activity::Valet {
                lot: lot.to_owned(),
                slot: slot.to_owned(),
            };
            ch.vars.set("inline_destination", inline);
        });
        self.valet_event(&c, lot, slot, "hold", at::VALET_HOLD, None);
        self.valet_presence(lot, slot, true);
        self.set_vars(&c, vec![("valet_lot_extension", slot.to_owned())]);
        self.playback_start(&c);
        Ok(c)
    }

    /// `retriever` dials `slot` and is bridged to the call parked there;
    /// returns the retriever's leg.
    pub fn valet_retrieve(
        &mut self,
        retriever: &str,
        lot: &str,
        slot: &str,
    ) -> Result<String, SimError> {
        let Some(parked) = self.feat.valet.get(lot).and_then(|l| l.get(slot)).cloned() else {
            return Err(SimError::Nothing(format!("retrieve from {lot}/{slot}")));
        };
        let r = self.new_inbound(retriever, slot)?;
        self.dialplan_preamble(&r, retriever, slot);
        self.exec_answer(&r);
        self.exec_start(&r, "valet_park", &format!("{lot} {slot}"));
        self.with_chan(&parked, |c| {
            c.vars.set("sip_to_tag", format!("{}T", &c.uuid[..8]));
            c.vars.set("sip_cseq", "2");
        });
        self.valet_event(&parked, lot, slot, "bridge", at::VALET_BRIDGE, Some(&r));
        self.uuid_bridge_prep(&r, &parked, false);
        self.exec_done(&r);
        self.state(&r, CsState::Hibernate, CsState::Hibernate);
        self.state(&r, CsState::Reset, CsState::Reset);
        self.uuid_bridge_prep(&parked, &r, true);
        self.playback_stop(&parked, "done");
        if let Some(l) = self.feat.valet.get_mut(lot) {
            l.remove(slot);
        }
        self.valet_presence(lot, slot, false);
        self.with_chan(&parked, |c| c.activity = Activity::Normal);
        self.valet_event(&parked, lot, slot, "exit", at::VALET_EXIT, None);
        self.exec_done(&parked);
        self.enter_soft_execute(&parked);
        self.state(&r, CsState::SoftExecute, CsState::SoftExecute);
        self.bridge(&parked, &r, true);
        Ok(r)
    }

    /// A parked caller hangs up.
    pub(crate) fn valet_hangup(&mut self, uuid: &str, lot: &str, slot: &str) {
        self.playback_stop(uuid, "break");
        if let Some(l) = self.feat.valet.get_mut(lot) {
            l.remove(slot);
        }
        self.valet_presence(lot, slot, false);
        self.valet_event(uuid, lot, slot, "exit", at::VALET_EXIT, None);
    }

    /// `valet_send_presence`: the lot's and the slot's presence (BLF).
    fn valet_presence(&mut self, lot: &str, slot: &str, held: bool) {
        let domain = self.cfg.domain.clone();
        let in_lot = self.feat.valet.get(lot).map_or(0, |l| l.len());
        let (lot_line, slot_line) = if held { (333, 373) } else { (351, 389) };
        let lot_status = if in_lot > 0 {
            format!(
                "Active ({in_lot} caller{})",
                if in_lot == 1 { "" } else { "s" }
            )
        } else {
            "Empty".to_owned()
        };
        let slot_status = if held { "Holding" } else { "Empty" };
        for (login, status, line, dir) in [
            (lot, lot_status.as_str(), lot_line, "inbound"),
            (
                slot,
                slot_status,
                slot_line,
                if held { "outbound" } else { "inbound" },
            ),
        ] {
            let origin = Origin {
                file: "mod_valet_parking.c",
                func: "valet_send_presence",
                line,
            };
            let count = self.feat.valet_presence;
            self.feat.valet_presence += 1;
            let mut ev = self.event("PRESENCE_IN", origin);
            ev.push("proto", "park");
            ev.push("login", login);
            ev.push("from", format!("{login}@{domain}"));
            ev.push("force-status", status);
            ev.push("rpid", if held { "active" } else { "unknown" });
            ev.push("event_type", "presence");
            ev.push("alt_event_type", "dialog");
            ev.push("event_count", count.to_string());
            ev.push("unique-id", login);
            ev.push(
                "channel-state",
                if held { "CS_ROUTING" } else { "CS_HANGUP" },
            );
            ev.push(
                "answer-state",
                if held { "confirmed" } else { "terminated" },
            );
            ev.push("presence-call-direction", dir);
            self.fire(ev);
        }
    }
}
