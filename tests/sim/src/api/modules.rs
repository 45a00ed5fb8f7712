//! Module api commands in their captured shapes: `valet_info` and
//! `fifo list` (XML), `conference json_list` (cJSON, tabs) and
//! `conference list`, `callcenter_config` (pipe-separated, `+OK` last),
//! `hash`, `user_data`, `sofia profile ... flush_inbound_reg`.

use super::cjson::{self, J};
use crate::stamp;
use crate::state::Core;
use crate::templates::directory_vars;

/// `valet_info [lot]`.
pub fn valet_info(core: &Core, arg: Option<&str>) -> String {
    let mut out = String::from("<lots>\n");
    for (lot, slots) in &core.feat.valet {
        if arg.is_some_and(|a| !a.trim().is_empty() && a.trim() != lot) {
            continue;
        }
        out.push_str(&format!("  <lot name=\"{lot}\">\n"));
        for (slot, uuid) in slots {
            out.push_str(&format!(
                "    <extension uuid=\"{uuid}\">{slot}</extension>\n"
            ));
        }
        out.push_str("  </lot>\n");
    }
    out.push_str("</lots>\n");
    out
}

/// `conference json_list` / `conference list`.
pub fn conference(core: &Core, arg: Option<&str>) -> String {
    let now = stamp::secs(stamp::now_us());
    match arg.unwrap_or_default().split_whitespace().next() {
        Some("json_list") => {
            let confs = core.feat.confs.iter().map(|c| {
                let flag = |b: bool| J::B(b);
                let members = c.members.iter().rev().map(|m| {
                    let floor = c.members.first().is_some_and(|f| f.id == m.id);
                    J::O(vec![
                        ("type", J::S("caller".into())),
                        ("id", J::N(i64::from(m.id))),
                        (
                            "flags",
                            J::O(vec![
                                ("can_hear", flag(true)),
                                ("can_see", flag(true)),
                                ("can_speak", flag(true)),
                                ("hold", flag(false)),
                                ("mute_detect", flag(false)),
                                ("talking", flag(false)),
                                ("has_video", flag(false)),
                                ("video_bridge", flag(false)),
                                ("has_floor", flag(floor)),
                                ("is_moderator", flag(false)),
                                ("end_conference", flag(false)),
                                ("mandatory_member_end_conference", flag(false)),
                                ("pass_digits", flag(false)),
                            ]),
                        ),
                        ("uuid", J::S(m.uuid.clone())),
                        ("caller_id_name", J::S(m.cid.clone())),
                        ("caller_id_number", J::S(m.cid.clone())),
                        ("join_time", J::N(now - m.joined)),
                        ("last_talking", J::N(0)),
                        ("energy", J::N(100)),
                        ("volume_in", J::N(0)),
                        ("volume_out", J::N(0)),
                        ("output-volume", J::N(0)),
                        ("input-volume", J::N(0)),
                    ])
                });
                J::O(vec![
                    ("conference_name", J::S(c.name.clone())),
                    (
                        "member_count",
                        J::N(i64::try_from(c.members.len()).unwrap_or(0)),
                    ),
                    ("ghost_count", J::N(0)),
                    ("rate", J::N(8000)),
                    ("run_time", J::N(now - c.created)),
                    ("conference_uuid", J::S(c.uuid.clone())),
                    ("canvas_count", J::N(0)),
                    ("max_bw_in", J::N(0)),
                    ("force_bw_in", J::N(0)),
                    ("video_floor_packets", J::N(0)),
                    ("locked", flag(false)),
                    ("destruct", flag(false)),
                    ("wait_mod", flag(false)),
                    ("audio_always", flag(false)),
                    ("running", flag(true)),
                    ("answered", flag(true)),
                    ("enforce_min", flag(true)),
                    ("bridge_to", flag(false)),
                    ("dynamic", flag(true)),
                    ("exit_sound", flag(true)),
                    ("enter_sound", flag(true)),
                    ("recording", flag(false)),
                    ("video_bridge", flag(false)),
                    ("video_floor_only", flag(false)),
                    ("video_rfc4579", flag(false)),
                    ("variables", J::O(vec![])),
                    ("members", J::A(members.collect())),
                ])
            });
            cjson::print(&J::A(confs.collect()))
        }
        Some("list") => {
            if core.feat.confs.is_empty() {
                return "+OK No active conferences.\n".into();
            }
            let mut out = String::new();
            for c in &core.feat.confs {
                out.push_str(&format!(
                    "+OK Conference {} ({} member{} rate: 8000 flags: running|answered|enforce_min|dynamic|exit_sound|enter_sound|json_status)\n",
                    c.name,
                    c.members.len(),
                    if c.members.len() == 1 { "" } else { "s" }
                ));
                for (i, m) in c.members.iter().enumerate().rev() {
                    let floor = if i == 0 { "|floor" } else { "" };
                    out.push_str(&format!(
                        "{};{};{};{};{};hear|speak{floor};0;0;100\n",
                        m.id, m.channel, m.uuid, m.cid, m.cid
                    ));
                }
            }
            out
        }
        _ => "-ERR Conference command not found\n".into(),
    }
}

/// `fifo list` / `fifo count`.
pub fn fifo(core: &Core, arg: Option<&str>) -> String {
    match arg.unwrap_or_default().split_whitespace().next() {
        Some("list") | Some("list_verbose") => {
            let mut out = String::from("<fifo_report>\n");
            for f in &core.feat.fifos {
                let (per_cycle, ring, lag) = f.params;
                let n = f.callers.len();
                out.push_str(&format!(
                    "  <fifo name=\"{}\" consumer_count=\"0\" caller_count=\"{n}\" waiting_count=\"{n}\" importance=\"0\" outbound_per_cycle=\"{per_cycle}\" outbound_per_cycle_min=\"{per_cycle}\" ring_timeout=\"{ring}\" default_lag=\"{lag}\" outbound_priority=\"5\" outbound_strategy=\"ringall\">\n    <outbound></outbound>\n",
                    f.name
                ));
                if f.callers.is_empty() {
                    out.push_str("    <callers></callers>\n");
                } else {
                    out.push_str("    <callers>\n");
                    for (i, (uuid, cid, at)) in f.callers.iter().enumerate() {
                        out.push_str(&format!(
                            "      <caller uuid=\"{uuid}\" status=\"WAITING\" caller_id_name=\"{cid}\" caller_id_number=\"{cid}\" timestamp=\"{}\" position=\"{}\" slot=\"0\"></caller>\n",
                            stamp::local(at * 1_000_000),
                            i + 1
                        ));
                    }
                    out.push_str("    </callers>\n");
                }
                out.push_str("    <consumers></consumers>\n    <bridges></bridges>\n  </fifo>\n");
            }
            out.push_str("</fifo_report>\n\n");
            out
        }
        Some("count") => core
            .feat
            .fifos
            .iter()
            .map(|f| format!("{}:0:{}:0:0:0\n", f.name, f.callers.len()))
            .collect(),
        _ => "-ERR Usage: fifo list|list_verbose|count|debug|status|has_outbound|importance [<fifo name>]|reparse [del_all]\n".into(),
    }
}

const QUEUE_COLUMNS: &str = "name|strategy|moh_sound|time_base_score|tier_rules_apply|tier_rule_wait_second|tier_rule_wait_multiply_level|tier_rule_no_agent_no_wait|discard_abandoned_after|abandoned_resume_allowed|max_wait_time|max_wait_time_with_no_agent|max_wait_time_with_no_agent_time_reached|record_template|calls_answered|calls_abandoned|ring_progressively_delay|skip_agents_with_external_calls|agent_no_answer_status";
const MEMBER_COLUMNS: &str = "queue|instance_id|uuid|session_uuid|cid_number|cid_name|system_epoch|joined_epoch|rejoined_epoch|bridge_epoch|abandoned_epoch|base_score|skill_score|serving_agent|serving_system|state|score";

/// `callcenter_config ...` (queues; agents and tiers are not simulated).
pub fn callcenter_config(core: &Core, arg: Option<&str>) -> String {
    let words: Vec<&str> = arg.unwrap_or_default().split_whitespace().collect();
    let now = stamp::secs(stamp::now_us());
    match words.as_slice() {
        ["queue", "list"] => {
            let mut out = String::new();
            if !core.feat.cc.queues.is_empty() {
                out.push_str(QUEUE_COLUMNS);
                out.push('\n');
            }
            for q in &core.feat.cc.queues {
                out.push_str(&format!(
                    "{q}|longest-idle-agent|local_stream://moh|system|false|300|true|false|60|false|0|0|5||0|0|0|true|On Break\n"
                ));
            }
            out.push_str("+OK\n");
            out
        }
        ["queue", "list", "members", q] => {
            let members: Vec<_> = core
                .feat
                .cc
                .members
                .iter()
                .filter(|m| m.queue == *q)
                .collect();
            let mut out = String::new();
            if !members.is_empty() {
                out.push_str(MEMBER_COLUMNS);
                out.push('\n');
            }
            for m in members {
                let (state, agent, system) = match &m.agent {
                    Some(a) => ("Answered", a.as_str(), "single_box"),
                    None => ("Waiting", "", ""),
                };
                out.push_str(&format!(
                    "{}|single_box|{}|{}|{}|{}|{}|{}|0|{}|0|0|0|{agent}|{system}|{state}|{}\n",
                    m.queue,
                    m.member_uuid,
                    m.session_uuid,
                    m.cid,
                    m.cid,
                    m.joined,
                    m.joined,
                    m.bridged,
                    now - m.joined
                ));
            }
            out.push_str("+OK\n");
            out
        }
        ["queue", "count", "members", q] => {
            let n = core
                .feat
                .cc
                .members
                .iter()
                .filter(|m| m.queue == *q)
                .count();
            format!("{n}\n")
        }
        ["queue", "count"] => format!("{}\n", core.feat.cc.queues.len()),
        [_, ..] => "+OK\n".into(),
        [] => "-ERR Usage: callcenter_config <command> [args]\n".into(),
    }
}

/// `hash insert|delete|select/realm/key[/value]`.
pub fn hash(core: &mut Core, arg: Option<&str>) -> String {
    let arg = arg.unwrap_or_default();
    let mut parts = arg.splitn(4, '/');
    let (op, realm, key) = (parts.next(), parts.next(), parts.next());
    let (Some(op), Some(realm), Some(key)) = (op, realm, key) else {
        return "-ERR Usage: hash insert|delete|select/realm/key[/value]\n".into();
    };
    let k = format!("{realm}/{key}");
    match op {
        "select" => core.feat.hash.get(&k).cloned().unwrap_or_default(),
        "insert" => {
            core.feat
                .hash
                .insert(k, parts.next().unwrap_or_default().to_owned());
            "+OK\n".into()
        }
        "delete" => {
            core.feat.hash.remove(&k);
            "+OK\n".into()
        }
        _ => "-ERR Usage: hash insert|delete|select/realm/key[/value]\n".into(),
    }
}

/// `user_data <user>@<domain> var|param|attr <name>`.
pub fn user_data(core: &Core, arg: Option<&str>) -> String {
    let words: Vec<&str> = arg.unwrap_or_default().split_whitespace().collect();
    let [who, _kind, name] = words.as_slice() else {
        return String::new();
    };
    let (user, domain) = who
        .split_once('@')
        .unwrap_or((who, core.cfg.domain.as_str()));
    if domain != core.cfg.domain {
        return String::new();
    }
    let Some(u) = core.cfg.directory.get(user) else {
        return String::new();
    };
    directory_vars(user, domain, u.callgroup.as_deref())
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
        .unwrap_or_default()
}

/// `sofia profile <name> flush_inbound_reg [<call_id> | <[user]@domain>]
/// [reboot]` (mod_sofia `cmd_profile`, `sofia_reg_expire_call_id`): every
/// registration whose Call-ID is the argument, or whose user and host are
/// its two halves (no user: every one of the host), or with no argument
/// every one, is deleted with a `sofia::expire` event. Other `sofia`
/// commands are not simulated.
pub fn sofia(core: &mut Core, arg: Option<&str>) -> String {
    let words: Vec<&str> = arg.unwrap_or_default().split_whitespace().collect();
    let (profile, rest) = match words.as_slice() {
        ["profile", profile, "flush_inbound_reg", rest @ ..] => (*profile, rest),
        ["profile", _, ..] => return "-ERR Unknown command!\n".into(),
        _ => return "-ERR the simulator runs only sofia profile <name> flush_inbound_reg\n".into(),
    };
    if profile != "internal" {
        return format!("Invalid Profile [{profile}]");
    }
    // `reboot` as the first argument means "all, rebooting".
    let target = rest
        .first()
        .copied()
        .filter(|t| !t.eq_ignore_ascii_case("reboot"));
    let matched: Vec<String> = core
        .feat
        .regs
        .values()
        .filter(|r| match target {
            None => true,
            Some(t) => {
                let by_aor = match t.split_once('@') {
                    Some((user, host)) => {
                        user == r.user && host.eq_ignore_ascii_case(&core.cfg.domain)
                    }
                    None => t.eq_ignore_ascii_case(&core.cfg.domain),
                };
                r.call_id == t || by_aor
            }
        })
        .map(|r| r.user.clone())
        .collect();
    for user in matched {
        if let Err(e) = core.expire(&user) {
            tracing::debug!(sip.user = %user, error = %e, "flush_inbound_reg");
        }
    }
    match target {
        Some(_) => "+OK flushing all registrations matching specified call_id\n".into(),
        None => "+OK flushing all registrations\n".into(),
    }
}
