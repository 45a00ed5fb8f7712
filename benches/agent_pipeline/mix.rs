//! The event mix: the call flows of real captures (basic call, group
//! intercept, valet park, conference, hold), filtered to what the agent
//! subscribes to, copied with fresh identities (channel uuids, SIP
//! Call-IDs, extensions, rooms, lots, pickup groups) so that thousands of
//! calls overlap as on a busy box, and encoded as FreeSWITCH sends them.

use std::path::Path;

use anyhow::{Context, bail};
use bytes::{Bytes, BytesMut};
use locus_agent::session::SUBSCRIPTION;
use locus_esl::capture::{self, Direction};
use locus_esl::{EslCodec, Event, Frame, Message};
use tokio_util::codec::Decoder;

/// Captures whose call events make up the mix, in rotation.
pub const TEMPLATES: [&str; 5] = [
    "02-register-and-basic-call.json.txt",
    "03-group-intercept.json.txt",
    "05-valet-park.json.txt",
    "06-conference.json.txt",
    "12-hold-unhold.json.txt",
];

/// Numbers of the lab box (users, conference room, valet slot) that each
/// copy renames, so copies do not share extensions, rooms or lots.
const NUMBERS: [&str; 6] = ["1000", "1001", "1002", "1003", "3000", "6001"];
/// The vanilla pickup group of users 1000-1003.
const GROUP: &str = "techsupport";

/// One capture's subscribed events, with the identities a copy renames.
#[derive(Clone)]
pub struct Template {
    /// Capture file name.
    pub name: &'static str,
    /// Seconds since the first event, and the event.
    pub events: Vec<(f64, Event)>,
    core_uuids: Vec<String>,
    call_ids: Vec<String>,
}

/// Would the agent's subscription deliver this event?
pub fn subscribed(ev: &Event) -> bool {
    match ev.name() {
        Some("CUSTOM") => ev.subclass().is_some_and(|s| SUBSCRIPTION.contains(&s)),
        // One HEARTBEAT per box every 20 s: copying it per call would
        // overstate it a thousandfold.
        Some("HEARTBEAT") => false,
        Some(name) => SUBSCRIPTION.contains(&name),
        None => false,
    }
}

/// Reads the templates from the shared fixtures.
pub fn load_templates(dir: &Path) -> anyhow::Result<Vec<Template>> {
    TEMPLATES.iter().map(|n| load(dir, n)).collect()
}

fn load(dir: &Path, name: &'static str) -> anyhow::Result<Template> {
    let path = dir.join(name);
    let records = capture::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut codec = EslCodec::default();
    let mut events = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.direction == Direction::ServerToClient)
    {
        let mut buf = BytesMut::from(&r.data[..]);
        while let Some(frame) = codec.decode(&mut buf)? {
            if let Message::Event(ev) = Message::try_from(frame)?
                && subscribed(&ev)
            {
                events.push((r.t, ev));
            }
        }
    }
    let Some(t0) = events.first().map(|(t, _)| *t) else {
        bail!("{name}: no subscribed events");
    };
    let mut core_uuids = Vec::new();
    let mut call_ids = Vec::new();
    for (t, ev) in &mut events {
        *t -= t0;
        for (k, v) in ev.headers() {
            let list = match k {
                "Core-UUID" => &mut core_uuids,
                "variable_sip_call_id" | "call-id" => &mut call_ids,
                _ => continue,
            };
            if !v.is_empty() && !list.iter().any(|x| x == v) {
                list.push(v.to_owned());
            }
        }
    }
    Ok(Template {
        name,
        events,
        core_uuids,
        call_ids,
    })
}

impl Template {
    /// Length of the flow in seconds.
    pub fn span(&self) -> f64 {
        self.events.last().map_or(0.0, |(t, _)| *t)
    }

    /// Copy `k` of the flow: every identity made unique to `k`.
    pub fn copy(&self, k: usize) -> Vec<(f64, Event)> {
        self.events
            .iter()
            .map(|(t, ev)| (*t, self.rename(ev, k)))
            .collect()
    }

    /// One event of copy `k`.
    pub fn rename(&self, ev: &Event, k: usize) -> Event {
        let mut out = Event::default();
        for (name, value) in ev.headers() {
            out.push(name, self.rename_value(value, k));
        }
        if let Some(body) = ev.body() {
            out.set_body(self.rename_value(body, k));
        }
        out
    }

    fn rename_value(&self, v: &str, k: usize) -> String {
        let mut s = rename_uuids(v, k, &self.core_uuids);
        for id in &self.call_ids {
            if s.contains(id.as_str()) {
                s = s.replace(id.as_str(), &format!("{id}.{k}"));
            }
        }
        if s.contains(GROUP) {
            s = s.replace(GROUP, &format!("{GROUP}{k}"));
        }
        rename_numbers(&s, k)
    }
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Replaces the first 8 hex digits of every uuid (but the box's own
/// Core-UUID) with `k`: same length, unique per copy.
fn rename_uuids(v: &str, k: usize, keep: &[String]) -> String {
    let b = v.as_bytes();
    if b.len() < 36 {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len());
    let mut i = 0;
    let mut copied = 0;
    while i + 36 <= b.len() {
        let cand = &b[i..i + 36];
        if is_uuid(cand) && !keep.iter().any(|c| c.as_bytes() == cand) {
            out.push_str(&v[copied..i]);
            out.push_str(&format!("{k:08x}"));
            out.push_str(&v[i + 8..i + 36]);
            i += 36;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&v[copied..]);
    out
}

/// Appends `k` (6 digits) to each of [`NUMBERS`] standing alone as a number.
fn rename_numbers(v: &str, k: usize) -> String {
    let b = v.as_bytes();
    let mut out = String::with_capacity(v.len() + 8);
    let mut copied = 0;
    let mut i = 0;
    while i + 4 <= b.len() {
        let alone = (i == 0 || !b[i - 1].is_ascii_digit())
            && (i + 4 == b.len() || !b[i + 4].is_ascii_digit());
        if alone && NUMBERS.iter().any(|n| n.as_bytes() == &b[i..i + 4]) {
            out.push_str(&v[copied..i + 4]);
            out.push_str(&format!("{k:06}"));
            i += 4;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&v[copied..]);
    out
}

/// `copies` calls, template `k % 5` for copy `k`, started so that about
/// `concurrency` overlap, merged in time order (each copy keeps its own
/// order).
pub fn overlapped(templates: &[Template], copies: usize, concurrency: usize) -> Vec<Event> {
    let mean_span =
        templates.iter().map(Template::span).sum::<f64>() / templates.len().max(1) as f64;
    let step = mean_span / concurrency.max(1) as f64;
    let mut timed: Vec<(f64, usize, usize, Event)> = Vec::new();
    for k in 0..copies {
        let tpl = &templates[k % templates.len()];
        let start = k as f64 * step;
        for (i, (t, ev)) in tpl.copy(k).into_iter().enumerate() {
            timed.push((start + t, k, i, ev));
        }
    }
    timed.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    timed.into_iter().map(|(_, _, _, ev)| ev).collect()
}

/// A fresh call's first CHANNEL_CREATE (copy `k` of the basic call) and
/// the uuid it is published under.
pub fn sentinel(templates: &[Template], k: usize) -> anyhow::Result<(Event, String)> {
    let tpl = &templates[0];
    let ev = tpl
        .events
        .iter()
        .find(|(_, ev)| ev.name() == Some("CHANNEL_CREATE"))
        .map(|(_, ev)| tpl.rename(ev, k))
        .context("the basic call has no CHANNEL_CREATE")?;
    let uuid = ev.unique_id().context("CHANNEL_CREATE without Unique-ID")?;
    let uuid = uuid.to_owned();
    Ok((ev, uuid))
}

/// Events in wire form, one `text/event-json` frame after another.
pub struct Encoded {
    /// The frames, back to back.
    pub bytes: Bytes,
    /// End offset of each frame.
    pub ends: Vec<usize>,
}

/// Encodes events as FreeSWITCH sends them to a JSON subscriber.
pub fn encode(events: &[Event]) -> anyhow::Result<Encoded> {
    let mut buf = BytesMut::new();
    let mut ends = Vec::with_capacity(events.len());
    for ev in events {
        Frame::event_json(ev).write_to(&mut buf)?;
        ends.push(buf.len());
    }
    Ok(Encoded {
        bytes: buf.freeze(),
        ends,
    })
}
