//! Comparing the simulator's events with a capture's: kinds, header names
//! and their order, variable names; globally or per leg.

use locus_esl::Event;
use locus_esl::capture::Direction;

use super::{Client, capture_events, command_replies, kind, records};

/// Header names of an event without the `variable_*` ones, in order.
pub fn nonvar_names(e: &Event) -> Vec<String> {
    e.headers()
        .filter(|(k, _)| !k.starts_with("variable_"))
        .map(|(k, _)| k.to_owned())
        .collect()
}

/// `variable_*` header names, sorted.
pub fn var_names(e: &Event) -> Vec<String> {
    let mut v: Vec<String> = e
        .headers()
        .filter(|(k, _)| k.starts_with("variable_"))
        .map(|(k, _)| k.to_owned())
        .collect();
    v.sort();
    v
}

/// Compares the simulator's events with a capture's, event by event: the
/// same kinds in the same order, the same non-variable header names in
/// the same order, the same set of variable names. Returns the differences.
pub fn compare(sim: &[Event], cap: &[Event]) -> Vec<String> {
    let mut diffs = Vec::new();
    let sk: Vec<String> = sim.iter().map(kind).collect();
    let ck: Vec<String> = cap.iter().map(kind).collect();
    if sk != ck {
        let first = sk
            .iter()
            .zip(&ck)
            .position(|(a, b)| a != b)
            .unwrap_or(sk.len().min(ck.len()));
        diffs.push(format!(
            "kinds differ at {first} (sim {} events, capture {}): sim {:?} capture {:?}",
            sk.len(),
            ck.len(),
            sk.get(first..(first + 5).min(sk.len())),
            ck.get(first..(first + 5).min(ck.len())),
        ));
        return diffs;
    }
    for (i, (s, c)) in sim.iter().zip(cap).enumerate() {
        let (sn, cn) = (nonvar_names(s), nonvar_names(c));
        if sn != cn {
            let only_sim: Vec<_> = sn.iter().filter(|x| !cn.contains(x)).collect();
            let only_cap: Vec<_> = cn.iter().filter(|x| !sn.contains(x)).collect();
            let at = sn.iter().zip(&cn).position(|(a, b)| a != b);
            diffs.push(format!(
                "#{i} {}: headers sim-only {only_sim:?} capture-only {only_cap:?} first order difference at {at:?}",
                kind(c)
            ));
        }
        let (sv, cv) = (var_names(s), var_names(c));
        if sv != cv {
            let extra: Vec<_> = sv.iter().filter(|x| !cv.contains(x)).collect();
            let missing: Vec<_> = cv.iter().filter(|x| !sv.contains(x)).collect();
            diffs.push(format!(
                "#{i} {}: variables extra {extra:?} missing {missing:?}",
                kind(c)
            ));
        }
    }
    diffs
}

/// The capture's events, minus HEARTBEAT / RE_SCHEDULE, minus the `API`
/// events of the recording harness's own `api` commands (the dialplan's
/// expansions stay), minus the kinds in `skip`.
pub fn scenario_events(name: &str, skip: &[&str]) -> Vec<Event> {
    let mut harness: Vec<String> = records(name)
        .iter()
        .filter(|r| r.direction == Direction::ClientToServer)
        .filter_map(|r| {
            let line = String::from_utf8_lossy(&r.data).trim_end().to_owned();
            line.strip_prefix("api ")
                .or_else(|| line.strip_prefix("bgapi "))
                .map(str::to_owned)
        })
        .collect();
    let mut out = Vec::new();
    for e in capture_events(name) {
        if matches!(e.name(), Some("HEARTBEAT") | Some("RE_SCHEDULE"))
            || skip.contains(&kind(&e).as_str())
        {
            continue;
        }
        // `show` is only ever the harness's (the dialplan never runs it).
        if e.name() == Some("API") && e.get("API-Command") == Some("show") {
            continue;
        }
        if e.name() == Some("API") {
            let full = match e.get("API-Command-Argument") {
                Some(a) => format!("{} {a}", e.get("API-Command").unwrap_or_default()),
                None => e.get("API-Command").unwrap_or_default().to_owned(),
            };
            if let Some(i) = harness.iter().position(|h| *h == full) {
                harness.remove(i);
                continue;
            }
        }
        out.push(e);
    }
    out
}

/// Reads events until the HEARTBEAT the test fires as an end marker.
pub async fn events_until_marker(c: &mut Client) -> Vec<Event> {
    let mut evs = c.events_until(|e| e.name() == Some("HEARTBEAT")).await;
    evs.pop();
    evs
}

/// Splits events into streams: one per channel (in order of first
/// appearance of its `Unique-ID`), plus one for events without a channel.
pub fn per_leg(events: &[Event]) -> Vec<Vec<Event>> {
    let mut ids: Vec<String> = Vec::new();
    let mut streams: Vec<Vec<Event>> = vec![Vec::new()];
    for e in events {
        match e.get("Unique-ID") {
            Some(u) => {
                let i = match ids.iter().position(|x| x == u) {
                    Some(i) => i,
                    None => {
                        ids.push(u.to_owned());
                        streams.push(Vec::new());
                        ids.len() - 1
                    }
                };
                streams[i + 1].push(e.clone());
            }
            None => streams[0].push(e.clone()),
        }
    }
    streams
}

/// [`compare`] per stream of [`per_leg`]: thread interleaving between legs
/// differs from run to run on a real box, the order within a leg does not.
pub fn compare_per_leg(sim: &[Event], cap: &[Event]) -> Vec<String> {
    let (s, c) = (per_leg(sim), per_leg(cap));
    if s.len() != c.len() {
        return vec![format!(
            "{} streams in sim, {} in capture",
            s.len(),
            c.len()
        )];
    }
    s.iter()
        .zip(&c)
        .enumerate()
        .flat_map(|(i, (a, b))| {
            compare(a, b)
                .into_iter()
                .map(move |d| format!("leg {i}: {d}"))
        })
        .collect()
}

/// The capture's response to the `nth` occurrence of `cmd`.
pub fn captured(file: &str, cmd: &str, nth: usize) -> String {
    command_replies(file)
        .into_iter()
        .filter(|(c, _)| c == cmd)
        .nth(nth)
        .map(|(_, f)| f.text())
        .unwrap()
}
