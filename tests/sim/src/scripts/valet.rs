//! Valet parking (capture 05): `valet_park <lot> <slot>` parks the caller
//! (`valet_parking::info` Action `hold`, music on hold); the same number
//! dialled again retrieves it (Action `bridge` with `Bridge-To-UUID`, then
//! `exit`) and bridges the retriever to the parked call.

use crate::channel::Activity;
use crate::error::SimError;
use crate::state::{Core, Headers};
use crate::templates::{Origin, at};

impl Core {
    fn valet_event(&mut self, uuid: &str, lot: &str, slot: &str, action: &str, origin: Origin, bridge_to: Option<&str>) {
        let mut pre: Headers = vec![
            ("Valet-Lot-Name", lot.to_owned()),
            ("Valet-Extension", slot.to_owned()),
            ("Action", action.to_owned()),
        ];
        if let Some(b) = bridge_to {
            pre.push(("Bridge-To-UUID", b.to_owned()));
        }
        self.chan_fire(uuid, "CUSTOM valet_parking::info", origin, pre, true, vec![]);
    }

    /// `caller` dials `slot` and is parked in `lot`; returns its leg.
    pub fn valet_park(&mut self, caller: &str, lot: &str, slot: &str) -> Result<String, SimError> {
        if self.feat.valet.get(lot).is_some_and(|l| l.contains_key(slot)) {
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
        self.with_chan(&c, |ch| {
            ch.activity = Activity::Valet {
                lot: lot.to_owned(),
                slot: slot.to_owned(),
            };
        });
        self.valet_event(&c, lot, slot, "hold", at::VALET_HOLD, None);
        self.playback(&c, true);
        Ok(c)
    }

    /// `retriever` dials `slot` and is bridged to the call parked there;
    /// returns the retriever's leg.
    pub fn valet_retrieve(&mut self, retriever: &str, lot: &str, slot: &str) -> Result<String, SimError> {
        let Some(parked) = self.feat.valet.get(lot).and_then(|l| l.get(slot)).cloned() else {
            return Err(SimError::Nothing(format!("retrieve from {lot}/{slot}")));
        };
        let r = self.new_inbound(retriever, slot)?;
        self.dialplan_preamble(&r, retriever, slot);
        self.exec_answer(&r);
        self.exec_start(&r, "valet_park", &format!("{lot} {slot}"));
        self.valet_event(&parked, lot, slot, "bridge", at::VALET_BRIDGE, Some(&r));
        self.exec_done(&r);
        self.playback(&parked, false);
        if let Some(l) = self.feat.valet.get_mut(lot) {
            l.remove(slot);
        }
        self.with_chan(&parked, |c| c.activity = Activity::Normal);
        self.valet_event(&parked, lot, slot, "exit", at::VALET_EXIT, None);
        self.exec_done(&parked);
        self.to_soft_execute(&parked);
        self.to_soft_execute(&r);
        self.bridge(&parked, &r, true);
        Ok(r)
    }

    /// A parked caller hangs up.
    pub(crate) fn valet_hangup(&mut self, uuid: &str, lot: &str, slot: &str) {
        self.playback(uuid, false);
        if let Some(l) = self.feat.valet.get_mut(lot) {
            l.remove(slot);
        }
        self.valet_event(uuid, lot, slot, "exit", at::VALET_EXIT, None);
    }
}
