//! Tests of the call model, and the helpers they share: reading the real
//! captures into events, building synthetic events, and a mirror that
//! applies an ops stream the way the store would.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod captures;
mod custom;
mod features;
mod inputs;
mod props;
mod scale;
mod transitions;

use std::collections::BTreeMap;

use locus_esl::{Event, capture};
use locus_schema::{NodeImage, NodeStatus, Table};

use super::{Model, ModelConfig, Update};

/// The events FreeSWITCH sent in a capture file (json or plain, whichever
/// the file holds), in order.
pub(super) fn capture_events(file: &str) -> Vec<Event> {
    let path = capture::fixtures_dir(env!("CARGO_MANIFEST_DIR")).join(file);
    let records = capture::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for r in records
        .iter()
        .filter(|r| r.direction == capture::Direction::ServerToClient)
    {
        // Records are cut at message boundaries: headers, blank line, body.
        let Some(split) = r.data.windows(2).position(|w| w == b"\n\n") else {
            continue;
        };
        let head = std::str::from_utf8(&r.data[..split]).unwrap();
        let body = &r.data[split + 2..];
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(": ")))
        };
        let len: usize = header("Content-Length").map_or(0, |l| l.parse().unwrap());
        let body = &body[..len.min(body.len())];
        match header("Content-Type") {
            Some("text/event-json") => out.push(Event::from_json(body).unwrap()),
            Some("text/event-plain") => out.push(Event::from_plain(body).unwrap()),
            _ => {}
        }
    }
    assert!(!out.is_empty(), "{file} holds no events");
    out
}

/// The event's own time in ms (`Event-Date-Timestamp` is in µs), so a
/// replay is deterministic.
pub(super) fn when(ev: &Event) -> u64 {
    ev.get("Event-Date-Timestamp")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(0, |t| t / 1000)
}

pub(super) fn base() -> NodeStatus {
    NodeStatus {
        sip_uri: "sip:127.0.0.1:5060".into(),
        weight: 1,
        ..NodeStatus::default()
    }
}

pub(super) fn model() -> Model {
    Model::new(ModelConfig::default(), base())
}

/// A copy of the published keys, built only from update streams.
#[derive(Debug, Default)]
pub(super) struct Mirror {
    pub tables: BTreeMap<Table, BTreeMap<String, String>>,
    pub status: NodeStatus,
}

impl Mirror {
    pub fn from_image(img: &NodeImage) -> Self {
        Mirror {
            tables: img.tables.clone(),
            status: img.status.clone(),
        }
    }

    pub fn apply(&mut self, up: &Update) {
        for op in &up.change.ops {
            let t = self.tables.entry(op.table).or_default();
            match &op.value {
                Some(v) => {
                    t.insert(op.field.clone(), v.clone());
                }
                None => {
                    assert!(t.remove(&op.field).is_some(), "delete of absent {op:?}");
                }
            }
        }
        self.tables.retain(|_, t| !t.is_empty());
        if let Some(s) = &up.change.status {
            self.status = s.clone();
        }
    }
}

/// One table of an image.
pub(super) fn table(img: &NodeImage, t: Table) -> BTreeMap<String, String> {
    img.tables.get(&t).cloned().unwrap_or_default()
}

/// A JSON field of a table as a value.
pub(super) fn json(img: &NodeImage, t: Table, field: &str) -> Option<serde_json::Value> {
    img.tables
        .get(&t)?
        .get(field)
        .map(|v| serde_json::from_str(v).unwrap())
}

/// Replays a capture, calling `at` after every event with the event, its
/// update and the model.
pub(super) fn replay(file: &str, mut at: impl FnMut(&Event, &Update, &Model)) -> Model {
    let mut m = model();
    for ev in capture_events(file) {
        let up = m.apply(&ev, when(&ev));
        at(&ev, &up, &m);
    }
    m
}

/// A channel event with the headers every real one has.
pub(super) fn chan(name: &str, uuid: &str, extra: &[(&str, &str)]) -> Event {
    let mut ev = Event::new(name);
    ev.push("Unique-ID", uuid);
    ev.push("Channel-State", "CS_EXECUTE");
    for (k, v) in extra {
        ev.push(*k, *v);
    }
    ev
}

/// A CUSTOM event.
pub(super) fn custom(subclass: &str, extra: &[(&str, &str)]) -> Event {
    let mut ev = Event::new("CUSTOM");
    ev.push("Event-Subclass", subclass);
    for (k, v) in extra {
        ev.push(*k, *v);
    }
    ev
}

/// The (uuid, state) of every published call.
pub(super) fn calls(img: &NodeImage) -> Vec<(String, String)> {
    table(img, Table::Calls)
        .values()
        .map(|v| {
            let r: locus_schema::CallRecord = serde_json::from_str(v).unwrap();
            (r.uuid, r.state.as_str().to_owned())
        })
        .collect()
}

/// The image after every event of a capture, with the event and the call count.
fn timeline(file: &str) -> Vec<(locus_esl::Event, locus_schema::NodeImage, usize)> {
    let mut m = model();
    capture_events(file)
        .into_iter()
        .map(|ev| {
            m.apply(&ev, when(&ev));
            let img = m.image();
            (ev, img, m.call_count())
        })
        .collect()
}
