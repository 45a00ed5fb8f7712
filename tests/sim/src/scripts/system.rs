//! Box-wide events: HEARTBEAT with the load figures (`send_heartbeat`).

use crate::api::uptime;
use crate::config::FS_VERSION;
use crate::stamp;
use crate::state::Core;
use crate::templates::at;

impl Core {
    /// Fires a HEARTBEAT with the current load figures.
    pub fn heartbeat(&mut self) {
        let up = stamp::now_us() - self.started_us;
        let sessions = self.session_count();
        let peak = (self.sessions_peak as u64).max(sessions);
        let (sps, idle) = (self.load.sps, self.load.idle_cpu);
        let max = self.cfg.max_sessions;
        let total = self.sessions_total;
        let mut ev = self.event("HEARTBEAT", at::HEARTBEAT);
        ev.push("Event-Info", "System Ready");
        ev.push("Up-Time", uptime(up));
        ev.push("FreeSWITCH-Version", FS_VERSION);
        ev.push("Uptime-msec", (up / 1000).to_string());
        ev.push("Session-Count", sessions.to_string());
        ev.push("Max-Sessions", max.to_string());
        ev.push("Session-Per-Sec", "30");
        ev.push("Session-Per-Sec-Last", sps.to_string());
        ev.push("Session-Per-Sec-Max", sps.to_string());
        ev.push("Session-Per-Sec-FiveMin", sps.to_string());
        ev.push("Session-Since-Startup", total.to_string());
        ev.push("Session-Peak-Max", peak.to_string());
        ev.push("Session-Peak-FiveMin", peak.to_string());
        ev.push("Idle-CPU", format!("{idle:.6}"));
        self.fire(ev);
    }
}
