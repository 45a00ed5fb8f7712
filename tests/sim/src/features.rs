//! State of the modules that hold calls in one place: valet lots,
//! conferences, call-center queues and FIFOs, plus registrations and the
//! mod_hash store the vanilla dialplan writes pickup keys into.

use std::collections::BTreeMap;

/// A SIP registration (sofia `sip_registrations` row).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// User id.
    pub user: String,
    /// SIP Call-ID of the REGISTER dialog.
    pub call_id: String,
    /// Contact host:port of the phone.
    pub contact: String,
    /// Source port the REGISTER came from.
    pub network_port: u16,
    /// Expires (seconds) as registered.
    pub expires: u32,
    /// Epoch seconds when it lapses.
    pub expires_at: i64,
}

/// A conference room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conference {
    /// Full name, `room-domain`.
    pub name: String,
    /// `Conference-Unique-ID`.
    pub uuid: String,
    /// Epoch seconds at creation (`run_time`).
    pub created: i64,
    /// Members (member id, channel uuid, cid, epoch joined), in join order.
    pub members: Vec<Member>,
    /// Last member id handed out.
    pub last_id: u32,
    /// Presence `event_count`.
    pub presence_count: u64,
}

/// A conference member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// `Member-ID`.
    pub id: u32,
    /// Channel uuid.
    pub uuid: String,
    /// Channel name.
    pub channel: String,
    /// Caller id (name = number for the simulated phones).
    pub cid: String,
    /// Epoch seconds at join.
    pub joined: i64,
}

/// A call-center member (waiting or served caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CcMember {
    /// Queue name (`support@default`).
    pub queue: String,
    /// `CC-Member-UUID`.
    pub member_uuid: String,
    /// Caller channel uuid.
    pub session_uuid: String,
    /// Caller id number (= name).
    pub cid: String,
    /// Epoch joined.
    pub joined: i64,
    /// Serving agent, once bridged.
    pub agent: Option<String>,
    /// Epoch bridged.
    pub bridged: i64,
}

/// mod_callcenter state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallCenter {
    /// Configured queues (vanilla: `support@default`).
    pub queues: Vec<String>,
    /// Members in queues.
    pub members: Vec<CcMember>,
}

/// A FIFO queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fifo {
    /// Name (`5900@127.0.0.1`).
    pub name: String,
    /// Waiting callers (channel uuid, cid, epoch pushed).
    pub callers: Vec<(String, String, i64)>,
    /// Static (from fifo.conf) or created on first use.
    pub configured: bool,
    /// `outbound_per_cycle`, `ring_timeout`, `default_lag` as configured.
    pub params: (u32, u32, u32),
}

/// Everything module-local on the box.
#[derive(Clone, Debug, Default)]
pub struct Features {
    /// Registrations by user.
    pub regs: BTreeMap<String, Registration>,
    /// mod_hash: `realm/key` -> value.
    pub hash: BTreeMap<String, String>,
    /// Valet: lot -> slot -> parked uuid.
    pub valet: BTreeMap<String, BTreeMap<String, String>>,
    /// Conferences by creation.
    pub confs: Vec<Conference>,
    /// Call center.
    pub cc: CallCenter,
    /// FIFOs in `fifo list` order.
    pub fifos: Vec<Fifo>,
    /// mod_valet_parking's presence `event_count`.
    pub valet_presence: u64,
    /// Conferences a member just left (their exit sound plays after the
    /// member's channel is gone).
    pub conf_left: Vec<String>,
}

impl Features {
    /// The vanilla configuration of a fresh box for `domain`.
    pub fn vanilla(domain: &str) -> Self {
        let fifo = |name: String, params| Fifo {
            name,
            callers: Vec::new(),
            configured: true,
            params,
        };
        Self {
            cc: CallCenter {
                queues: vec!["support@default".into()],
                members: Vec::new(),
            },
            fifos: vec![
                fifo(format!("cool_fifo@{domain}"), (1, 60, 30)),
                fifo("manual_calls".into(), (0, 0, 0)),
            ],
            valet: BTreeMap::new(),
            ..Self::default()
        }
    }

    /// The FIFO named `name`, created (before `manual_calls`, as FreeSWITCH
    /// lists it) when absent.
    pub fn fifo_mut(&mut self, name: &str) -> &mut Fifo {
        let pos = match self.fifos.iter().position(|f| f.name == name) {
            Some(p) => p,
            None => {
                let at = self
                    .fifos
                    .iter()
                    .position(|f| f.name == "manual_calls")
                    .unwrap_or(self.fifos.len());
                let fifo = Fifo {
                    name: name.to_owned(),
                    callers: Vec::new(),
                    configured: false,
                    params: (0, 0, 0),
                };
                self.fifos.insert(at, fifo);
                at
            }
        };
        &mut self.fifos[pos]
    }

    /// Removes every trace of a channel (it hung up).
    pub fn forget_channel(&mut self, uuid: &str) {
        for lot in self.valet.values_mut() {
            lot.retain(|_, u| u != uuid);
        }
        for c in &mut self.confs {
            c.members.retain(|m| m.uuid != uuid);
        }
        self.cc.members.retain(|m| m.session_uuid != uuid);
        for f in &mut self.fifos {
            f.callers.retain(|(u, _, _)| u != uuid);
        }
    }
}
