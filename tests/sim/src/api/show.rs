//! `show channels|calls as json`, `show ... count`, `show registrations as
//! json` and `uuid_dump`, in the captured shapes: with rows
//! `{"row_count":N,"rows":[...]}` (no spaces, no newline, every value a
//! string); without rows `{"row_count": 0}\n`; counts `\nN total.\n`.

use crate::channel::{Channel, Direction};
use crate::stamp;
use crate::state::Core;

type Row = Vec<(&'static str, String)>;

fn json_rows(rows: &[Row]) -> String {
    if rows.is_empty() {
        return "{\"row_count\": 0}\n".into();
    }
    let mut out = format!("{{\"row_count\":{},\"rows\":[", rows.len());
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('{');
        for (j, (k, v)) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push('"');
            out.push_str(k);
            out.push_str("\":");
            out.push_str(&serde_json::to_string(v).unwrap_or_else(|_| "\"\"".into()));
        }
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// The `call_uuid` column: the bridge owner when bridged, the originator
/// for an originated leg, the leg itself for `originate`, else empty.
fn sql_call_uuid(core: &Core, c: &Channel) -> String {
    let bridged = c.answered && c.vars.get("bridge_uuid").is_some();
    if let Some(peer) = c
        .peer
        .as_deref()
        .and_then(|p| core.chan(p))
        .filter(|_| bridged)
    {
        return if c.bridge_a {
            c.uuid.clone()
        } else {
            peer.uuid.clone()
        };
    }
    if c.direction == Direction::Outbound {
        return c.vars.get("originator").unwrap_or(&c.uuid).to_owned();
    }
    String::new()
}

fn callee_direction(c: &Channel) -> &'static str {
    let Some(p) = &c.profile else { return "" };
    if p.callee_name.is_empty() {
        ""
    } else if c.direction == Direction::Outbound && c.vars.get("originator").is_none() {
        "RECV"
    } else {
        "SEND"
    }
}

fn base(core: &Core, c: &Channel, prefix: &'static str) -> Row {
    let p = c.profile.clone().unwrap_or_default();
    let created = p.times.created;
    let codec = c.codec.map(|x| x.0).unwrap_or_default();
    let mut r: Row = vec![
        ("uuid", c.uuid.clone()),
        ("direction", c.direction.name().into()),
        ("created", stamp::local(created)),
        ("created_epoch", stamp::secs(created).to_string()),
        ("name", c.name.clone()),
        ("state", c.running.name().into()),
        ("cid_name", p.cid_name.clone()),
        ("cid_num", p.cid_number.clone()),
        ("ip_addr", p.network_addr.clone()),
        ("dest", p.destination.clone()),
    ];
    if prefix.is_empty() {
        let (app, data) = c
            .application
            .as_ref()
            .map_or((String::new(), String::new()), |a| {
                (a.name.clone(), a.data.clone())
            });
        let read = c.read_codec.or(c.codec);
        r.extend([
            ("application", app),
            ("application_data", data),
            ("dialplan", p.dialplan.clone()),
            ("context", p.context.clone()),
            ("read_codec", read.map(|x| x.0).unwrap_or_default().into()),
            (
                "read_rate",
                if read.is_some() {
                    "8000".into()
                } else {
                    String::new()
                },
            ),
            (
                "read_bit_rate",
                read.map(|x| x.1.to_string()).unwrap_or_default(),
            ),
            ("write_codec", codec.into()),
            (
                "write_rate",
                if c.codec.is_some() {
                    "8000".into()
                } else {
                    String::new()
                },
            ),
            (
                "write_bit_rate",
                c.codec.map(|x| x.1.to_string()).unwrap_or_default(),
            ),
            ("secure", String::new()),
            ("hostname", core.cfg.hostname.clone()),
        ]);
    }
    r.extend([
        (
            "presence_id",
            c.vars.get("presence_id").unwrap_or_default().into(),
        ),
        ("presence_data", String::new()),
        (
            "accountcode",
            c.vars.get("accountcode").unwrap_or_default().into(),
        ),
        ("callstate", c.callstate.name().into()),
        ("callee_name", p.callee_name.clone()),
        ("callee_num", p.callee_number.clone()),
        ("callee_direction", callee_direction(c).into()),
    ]);
    r
}

fn channel_row(core: &Core, c: &Channel) -> Row {
    let p = c.profile.clone().unwrap_or_default();
    let mut r = base(core, c, "");
    r.extend([
        ("call_uuid", sql_call_uuid(core, c)),
        (
            "sent_callee_name",
            c.vars
                .get("last_sent_callee_id_name")
                .unwrap_or_default()
                .into(),
        ),
        (
            "sent_callee_num",
            c.vars
                .get("last_sent_callee_id_number")
                .unwrap_or_default()
                .into(),
        ),
        ("initial_cid_name", p.cid_name.clone()),
        ("initial_cid_num", p.cid_number.clone()),
        ("initial_ip_addr", p.network_addr.clone()),
        ("initial_dest", p.destination.clone()),
        ("initial_dialplan", p.dialplan.clone()),
        ("initial_context", p.context.clone()),
    ]);
    r
}

/// Legs that are the B side of a bridge (FreeSWITCH's `calls.callee_uuid`).
fn is_callee(core: &Core, c: &Channel) -> bool {
    !c.bridge_a
        && c.answered
        && c.peer
            .as_deref()
            .and_then(|p| core.chan(p))
            .is_some_and(|p| p.bridge_a)
}

fn call_row(core: &Core, c: &Channel) -> Row {
    let mut r = base(core, c, "call");
    r.push(("call_uuid", sql_call_uuid(core, c)));
    r.push(("hostname", core.cfg.hostname.clone()));
    r.push((
        "sent_callee_name",
        c.vars
            .get("last_sent_callee_id_name")
            .unwrap_or_default()
            .into(),
    ));
    r.push((
        "sent_callee_num",
        c.vars
            .get("last_sent_callee_id_number")
            .unwrap_or_default()
            .into(),
    ));
    let b = c
        .peer
        .as_deref()
        .and_then(|p| core.chan(p))
        .filter(|_| c.bridge_a && c.answered);
    let b_row = b.map(|b| (base(core, b, "b"), b)).map(|(mut row, b)| {
        row.push((
            "sent_callee_name",
            b.vars
                .get("last_sent_callee_id_name")
                .unwrap_or_default()
                .into(),
        ));
        row.push((
            "sent_callee_num",
            b.vars
                .get("last_sent_callee_id_number")
                .unwrap_or_default()
                .into(),
        ));
        row
    });
    const B_KEYS: [&str; 20] = [
        "b_uuid",
        "b_direction",
        "b_created",
        "b_created_epoch",
        "b_name",
        "b_state",
        "b_cid_name",
        "b_cid_num",
        "b_ip_addr",
        "b_dest",
        "b_presence_id",
        "b_presence_data",
        "b_accountcode",
        "b_callstate",
        "b_callee_name",
        "b_callee_num",
        "b_callee_direction",
        "b_sent_callee_name",
        "b_sent_callee_num",
        "call_created_epoch",
    ];
    let values: Vec<String> = match (&b_row, b) {
        (Some(row), Some(b)) => {
            let mut v: Vec<String> = row.iter().map(|(_, v)| v.clone()).collect();
            let bridged = b.profile.as_ref().map_or(0, |p| p.times.bridged);
            let bridged = c
                .profile
                .as_ref()
                .map_or(bridged, |p| p.times.bridged.max(bridged));
            v.push(stamp::secs(bridged).to_string());
            v
        }
        _ => vec![String::new(); B_KEYS.len()],
    };
    r.extend(B_KEYS.iter().copied().zip(values));
    r
}

/// `show <what>`.
pub fn show(core: &Core, arg: Option<&str>) -> String {
    let words: Vec<&str> = arg.unwrap_or_default().split_whitespace().collect();
    match words.as_slice() {
        ["channels", "as", "json"] => {
            let rows: Vec<Row> = core.chans.iter().map(|c| channel_row(core, c)).collect();
            json_rows(&rows)
        }
        ["calls", "as", "json"] => {
            let rows: Vec<Row> = core
                .chans
                .iter()
                .filter(|c| !is_callee(core, c))
                .map(|c| call_row(core, c))
                .collect();
            json_rows(&rows)
        }
        ["channels", "count"] => format!("\n{} total.\n", core.chans.len()),
        ["calls", "count"] => {
            let n = core.chans.iter().filter(|c| !is_callee(core, c)).count();
            format!("\n{n} total.\n")
        }
        ["registrations", "as", "json"] => {
            let rows: Vec<Row> = core
                .feat
                .regs
                .values()
                .map(|r| {
                    vec![
                        ("reg_user", r.user.clone()),
                        ("realm", core.cfg.domain.clone()),
                        ("token", r.call_id.clone()),
                        ("url", format!("sofia/internal/sip:{}@{}", r.user, r.contact)),
                        ("expires", r.expires_at.to_string()),
                        ("network_ip", "127.0.0.1".into()),
                        ("network_port", r.network_port.to_string()),
                        ("network_proto", "udp".into()),
                        ("hostname", core.cfg.hostname.clone()),
                        ("metadata", String::new()),
                    ]
                })
                .collect();
            json_rows(&rows)
        }
        _ => "-USAGE: codec|endpoint|application|api|dialplan|file|timer|calls [count]|channels [count|like <match string>]|calls|detailed_calls|bridged_calls|detailed_bridged_calls|aliases|complete|chat|management|modules|nat_map|say|interfaces|interface_types|tasks|limits|status\n".into(),
    }
}
