//! The simulated box's core: identity, the event sequence, all channels and
//! module state, and firing events onto the bus. Everything mutates under
//! one lock, so events get strictly increasing `Event-Sequence` numbers and
//! reach every listener in firing order.

use std::sync::Arc;

use locus_esl::Event;
use tokio::sync::broadcast;

use crate::bus::{Item, Notice, Published};
use crate::channel::Channel;
use crate::config::SimConfig;
use crate::features::Features;
use crate::render;
use crate::stamp;
use crate::templates::Origin;

/// Load figures reported by HEARTBEAT and `status`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Load {
    /// `Idle-CPU` percent.
    pub idle_cpu: f64,
    /// `Session-Per-Sec-Last` (calls per second right now).
    pub sps: u32,
    /// Sessions to report on top of the simulated channels (load testing).
    pub extra_sessions: u32,
}

impl Default for Load {
    fn default() -> Self {
        Self {
            idle_cpu: 97.1,
            sps: 0,
            extra_sessions: 0,
        }
    }
}

/// Headers added around a channel's data in one event.
pub type Headers = Vec<(&'static str, String)>;

/// The simulated FreeSWITCH core.
#[derive(Debug)]
pub struct Core {
    /// Configuration (identity, directory).
    pub cfg: SimConfig,
    /// `Core-UUID` of this run.
    pub core_uuid: String,
    seq: u64,
    tx: broadcast::Sender<Item>,
    /// Channels in creation order.
    pub chans: Vec<Channel>,
    /// Module state.
    pub feat: Features,
    /// Load figures.
    pub load: Load,
    /// Start of this run (µs).
    pub started_us: i64,
    /// Sessions created since start.
    pub sessions_total: u64,
    /// Highest concurrent session count.
    pub sessions_peak: usize,
    /// The SIP INVITE behind the next inbound leg (one-shot), when the
    /// SIP side creates it.
    pub next_sip: Option<crate::spawn::SipLeg>,
}

impl Core {
    /// A fresh box.
    pub fn new(cfg: SimConfig, tx: broadcast::Sender<Item>) -> Self {
        let core_uuid = cfg.core_uuid.clone().unwrap_or_else(stamp::uuid);
        let feat = Features::vanilla(&cfg.domain);
        Self {
            cfg,
            core_uuid,
            seq: 0,
            tx,
            chans: Vec::new(),
            feat,
            load: Load::default(),
            started_us: stamp::now_us(),
            sessions_total: 0,
            sessions_peak: 0,
            next_sip: None,
        }
    }

    /// A new subscriber to the bus.
    pub fn subscribe(&self) -> broadcast::Receiver<Item> {
        self.tx.subscribe()
    }

    /// Everything of a run is gone; a new `Core-UUID` (FreeSWITCH restart).
    /// Registrations survive: sofia keeps them in its database.
    pub fn restart(&mut self) {
        let regs = std::mem::take(&mut self.feat.regs);
        self.core_uuid = stamp::uuid();
        self.seq = 0;
        self.chans.clear();
        self.feat = Features::vanilla(&self.cfg.domain);
        self.feat.regs = regs;
        self.started_us = stamp::now_us();
        self.sessions_total = 0;
        self.sessions_peak = 0;
    }

    /// An event with the common prefix (consumes a sequence number, as
    /// `switch_event_create` does).
    pub fn event(&mut self, name: &str, at: Origin) -> Event {
        let mut ev = Event::default();
        self.prefix(&mut ev, name, at);
        ev
    }

    /// A CUSTOM event; `Event-Subclass` comes first on the wire.
    pub fn custom(&mut self, subclass: &str, at: Origin) -> Event {
        let mut ev = Event::default();
        ev.push("Event-Subclass", subclass);
        self.prefix(&mut ev, "CUSTOM", at);
        ev
    }

    fn prefix(&mut self, ev: &mut Event, name: &str, at: Origin) {
        self.seq += 1;
        let now = stamp::now_us();
        ev.push("Event-Name", name);
        ev.push("Core-UUID", self.core_uuid.as_str());
        ev.push("FreeSWITCH-Hostname", self.cfg.hostname.as_str());
        ev.push("FreeSWITCH-Switchname", self.cfg.node_id.as_str());
        ev.push("FreeSWITCH-IPv4", self.cfg.ipv4.as_str());
        ev.push("FreeSWITCH-IPv6", self.cfg.ipv6.as_str());
        ev.push("Event-Date-Local", stamp::local(now));
        ev.push("Event-Date-GMT", stamp::gmt(now));
        ev.push("Event-Date-Timestamp", now.to_string());
        ev.push("Event-Calling-File", at.file);
        ev.push("Event-Calling-Function", at.func);
        ev.push("Event-Calling-Line-Number", at.line.to_string());
        ev.push("Event-Sequence", self.seq.to_string());
    }

    /// Puts an event on the bus.
    pub fn fire(&self, ev: Event) {
        // No receiver is fine: nobody is connected.
        let _ = self.tx.send(Item::Event(Arc::new(Published::new(ev))));
    }

    /// Tells every session to leave with `notice`.
    pub fn disconnect_all(&self, notice: Notice) {
        let _ = self.tx.send(Item::Disconnect(notice));
    }

    /// A channel by uuid.
    pub fn chan(&self, uuid: &str) -> Option<&Channel> {
        self.chans.iter().find(|c| c.uuid == uuid)
    }

    /// A channel by uuid, mutable.
    pub fn chan_mut(&mut self, uuid: &str) -> Option<&mut Channel> {
        self.chans.iter_mut().find(|c| c.uuid == uuid)
    }

    /// Fires a channel event: prefix, `pre`, basic channel data, variables
    /// when `vars`, then `post`. `subclass` makes it a CUSTOM event.
    pub fn chan_fire(
        &mut self,
        uuid: &str,
        name: &str,
        at: Origin,
        pre: Headers,
        vars: bool,
        post: Headers,
    ) {
        let Some(idx) = self.chans.iter().position(|c| c.uuid == uuid) else {
            tracing::debug!(call.uuid = uuid, event = name, "event for a gone channel");
            return;
        };
        let mut ev = match name.strip_prefix("CUSTOM ") {
            Some(sub) => self.custom(sub, at),
            None => self.event(name, at),
        };
        for (k, v) in pre {
            ev.push(k, v);
        }
        let ch = &self.chans[idx];
        render::basic_data(ch, &mut ev);
        if vars {
            render::extended_data(ch, &mut ev);
        }
        for (k, v) in post {
            ev.push(k, v);
        }
        self.fire(ev);
    }

    /// Sessions now (channels plus the configured extra load).
    pub fn session_count(&self) -> u64 {
        self.chans.len() as u64 + u64::from(self.load.extra_sessions)
    }

    /// Next `session_id` variable value; counts a new session.
    pub fn next_session(&mut self) -> u64 {
        self.sessions_total += 1;
        self.sessions_peak = self.sessions_peak.max(self.chans.len() + 1);
        self.sessions_total
    }
}
