//! Commands that act on the box: `status`, `global_getvar`, `uuid_kill`,
//! `originate`, and `sim ...`, the text interface that drives a standalone
//! simulator with the same scripts as [`crate::SimHandle`].

use crate::config::FS_VERSION;
use crate::error::SimError;
use crate::scripts::originate::OriginateApp;
use crate::stamp;
use crate::state::Core;

/// `Up-Time` / `status` uptime text.
pub fn uptime(us: i64) -> String {
    let us = us.max(0);
    let s = us / 1_000_000;
    format!(
        "{} years, {} days, {} hours, {} minutes, {} seconds, {} milliseconds, {} microseconds",
        s / 31_536_000,
        s % 31_536_000 / 86_400,
        s % 86_400 / 3600,
        s % 3600 / 60,
        s % 60,
        us % 1_000_000 / 1000,
        us % 1000
    )
}

/// `status`.
pub fn status(core: &Core) -> String {
    let up = stamp::now_us() - core.started_us;
    // The human-readable form: an empty revision between two spaces.
    let version = FS_VERSION.replace('~', "  ");
    format!(
        "UP {}\nFreeSWITCH (Version {version}) is ready\n{} session(s) since startup\n{} session(s) - peak {}, last 5min {} \n{} session(s) per Sec out of max 30, peak {}, last 5min {} \n{} session(s) max\nmin idle cpu 0.00/{:.2}\nCurrent Stack Size/Max 240K/8192K\n",
        uptime(up),
        core.sessions_total,
        core.session_count(),
        core.sessions_peak,
        core.sessions_peak,
        core.load.sps,
        core.load.sps,
        core.load.sps,
        core.cfg.max_sessions,
        core.load.idle_cpu
    )
}

/// `global_getvar <name>`.
pub fn global_getvar(core: &Core, arg: Option<&str>) -> String {
    match arg.map(str::trim) {
        Some("domain") | Some("domain_name") => core.cfg.domain.clone(),
        Some("hostname") => core.cfg.hostname.clone(),
        Some("local_ip_v4") => "127.0.0.1".into(),
        // Unset unless configured apart from the hostname (as captured).
        Some("switchname") if core.cfg.node_id != core.cfg.hostname => core.cfg.node_id.clone(),
        _ => String::new(),
    }
}

/// `uuid_kill <uuid> [cause]`.
pub fn uuid_kill(core: &mut Core, arg: Option<&str>) -> String {
    let mut w = arg.unwrap_or_default().split_whitespace();
    let Some(uuid) = w.next() else {
        return "-USAGE: <uuid> [cause]\n".into();
    };
    let cause = match w.next() {
        Some("USER_BUSY") => "USER_BUSY",
        Some("CALL_REJECTED") => "CALL_REJECTED",
        _ => "NORMAL_CLEARING",
    };
    match core.kill(uuid, cause) {
        Ok(()) => "+OK\n".into(),
        Err(_) => "-ERR No such channel!\n".into(),
    }
}

/// `originate [{vars}]user/<user>[@domain] &park()`; the application runs
/// after the reply (and BACKGROUND_JOB), as FreeSWITCH's does.
pub fn originate(core: &mut Core, arg: Option<&str>) -> (String, Option<super::After>) {
    let arg = arg.unwrap_or_default().trim();
    let (vars, rest) = match arg.strip_prefix('{').and_then(|r| r.split_once('}')) {
        Some((v, r)) => (v, r),
        None => ("", arg),
    };
    let var = |name: &str| {
        vars.split(',')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_owned())
    };
    let mut parts = rest.split_whitespace();
    let dial = parts.next().unwrap_or_default();
    let Some(user) = dial
        .strip_prefix("user/")
        .map(|u| u.split('@').next().unwrap_or(u))
    else {
        return ("-ERR CHAN_NOT_IMPLEMENTED\n".into(), None);
    };
    if parts.next().is_none_or(|app| !app.starts_with("&park")) {
        return ("-ERR CHAN_NOT_IMPLEMENTED\n".into(), None);
    }
    let name = var("origination_caller_id_name").unwrap_or_else(|| "FreeSWITCH".into());
    let number = var("origination_caller_id_number").unwrap_or_else(|| "0000000000".into());
    match core.originate(user, (&name, &number)) {
        Ok(uuid) => (
            format!("+OK {uuid}\n"),
            Some(super::After::App(uuid, OriginateApp::Park)),
        ),
        Err(SimError::Capacity(_)) => ("-ERR NORMAL_TEMPORARY_FAILURE\n".into(), None),
        Err(_) => ("-ERR SUBSCRIBER_ABSENT\n".into(), None),
    }
}

const SIM_USAGE: &str = "sim register|unregister|expire <user> | call <from> <to> | answer|hangup|hold|unhold <uuid> | intercept_group <picker> <group> | intercept_ext <picker> <ext> | valet_park|valet_retrieve <user> <lot> <slot> | conference_join <user> <room> | conference_leave <uuid> | callcenter_enter <user> <queue> | callcenter_leave <uuid> | fifo_push|fifo_pop <user> <fifo> | originate_park <user> | heartbeat | load <idle_cpu> <sps> [extra_sessions]";

/// `sim <action> <args>`: runs a script; `+OK [uuid]` or `-ERR <why>`.
pub fn sim(core: &mut Core, arg: Option<&str>) -> String {
    let words: Vec<&str> = arg.unwrap_or_default().split_whitespace().collect();
    match run(core, &words) {
        Ok(Some(id)) => format!("+OK {id}\n"),
        Ok(None) => "+OK\n".into(),
        Err(e) => format!("-ERR {e}\n"),
    }
}

fn run(core: &mut Core, w: &[&str]) -> Result<Option<String>, SimError> {
    let some = |r: Result<String, SimError>| r.map(Some);
    let none = |r: Result<(), SimError>| r.map(|()| None);
    match w {
        ["register", u] => none(core.register(u, crate::scripts::register::EXPIRES)),
        ["unregister", u] => none(core.unregister(u)),
        ["expire", u] => none(core.expire(u)),
        ["call", a, b] => some(core.call(a, b)),
        ["answer", c] => none(core.answer(c)),
        ["hangup", c] => none(core.hangup(c)),
        ["hold", c] => none(core.hold(c)),
        ["unhold", c] => none(core.unhold(c)),
        ["intercept_group", p, g] => some(core.intercept_group(p, g)),
        ["intercept_ext", p, e] => some(core.intercept_ext(p, e)),
        ["valet_park", u, lot, slot] => some(core.valet_park(u, lot, slot)),
        ["valet_retrieve", u, lot, slot] => some(core.valet_retrieve(u, lot, slot)),
        ["conference_join", u, room] => core
            .conference_join(u, room)
            .map(|m| Some(format!("{} {}", m.uuid, m.id))),
        ["conference_leave", c] | ["callcenter_leave", c] => none(core.hangup(c)),
        ["callcenter_enter", u, q] => some(core.callcenter_enter(u, q)),
        ["fifo_push", u, f] => some(core.fifo_push(u, f)),
        ["fifo_pop", u, f] => some(core.fifo_pop(u, f)),
        ["originate_park", u] => some(core.originate_park(u)),
        ["heartbeat"] => {
            core.heartbeat();
            Ok(None)
        }
        ["load", cpu, sps, rest @ ..] => {
            let bad = || SimError::Usage(SIM_USAGE);
            core.load.idle_cpu = cpu.parse().map_err(|_| bad())?;
            core.load.sps = sps.parse().map_err(|_| bad())?;
            if let Some(x) = rest.first() {
                core.load.extra_sessions = x.parse().map_err(|_| bad())?;
            }
            Ok(None)
        }
        _ => Err(SimError::Usage(SIM_USAGE)),
    }
}

/// `uuid_dump <uuid> [json|plain|txt]`: a CHANNEL_DATA event.
pub fn uuid_dump(core: &mut Core, arg: Option<&str>) -> String {
    let mut words = arg.unwrap_or_default().split_whitespace();
    let Some(uuid) = words.next() else {
        return "-USAGE: <uuid> [format]\n".into();
    };
    let format = words.next().unwrap_or("txt").to_ascii_lowercase();
    let Some(ch) = core.chan(uuid).cloned() else {
        return "-ERR No such channel!\n".into();
    };
    let mut ev = core.event("CHANNEL_DATA", crate::templates::at::CHANNEL_DATA);
    crate::render::basic_data(&ch, &mut ev);
    crate::render::extended_data(&ch, &mut ev);
    match format.as_str() {
        "json" => ev.to_json(),
        // `plain` is the one format FreeSWITCH does not URL-encode.
        "plain" => {
            let mut s: String = ev.headers().map(|(k, v)| format!("{k}: {v}\n")).collect();
            s.push('\n');
            s
        }
        _ => ev.to_plain(),
    }
}
