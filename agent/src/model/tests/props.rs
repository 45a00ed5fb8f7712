//! Properties over every capture: the ops stream rebuilds the image, the
//! json and plain recordings agree, and a resync from a snapshot rebuilds
//! what the live stream built.

use std::collections::{BTreeMap, HashMap};

use locus_esl::Event;
use locus_schema::{NodeImage, Table};

use super::{Mirror, capture_events, model, when};
use crate::listing::{ConferenceEntry, QueueEntry, QueueKind, ValetEntry};
use crate::model::Model;

fn all_captures() -> Vec<String> {
    let dir = locus_esl::capture::fixtures_dir(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".txt"))
        .collect();
    files.sort();
    assert!(files.len() >= 20, "fixtures missing in {}", dir.display());
    files
}

/// Captures that hold events (some hold only an auth exchange or EOF).
fn with_events(file: &str) -> bool {
    !file.starts_with("01a") && !file.starts_with("09b") && !file.starts_with("09c")
}

#[test]
fn ops_stream_rebuilds_the_image_and_the_image_is_a_full_recomputation() {
    let mut checked = 0;
    for file in all_captures().iter().filter(|f| with_events(f)) {
        let mut m = model();
        let mut mirror = Mirror::from_image(&m.image());
        for (i, ev) in capture_events(file).iter().enumerate() {
            let up = m.apply(ev, when(ev));
            mirror.apply(&up);
            let img = m.image();
            assert_eq!(mirror.tables, img.tables, "{file} event #{i} {ev:?}");
            assert_eq!(mirror.status, img.status, "{file} event #{i}");
            // And the incremental image equals a recomputation from scratch.
            assert_eq!(
                img.tables,
                m.recomputed_tables(),
                "{file} event #{i} {ev:?}"
            );
            let counts = (img.status.calls as usize, img.status.channels as usize);
            assert_eq!(counts, (m.call_count(), m.channel_count()));
            // No op that changes nothing, no field twice in one change.
            let mut seen = std::collections::HashSet::new();
            assert!(
                up.change
                    .ops
                    .iter()
                    .all(|op| seen.insert((op.table, &op.field)))
            );
            checked += 1;
        }
    }
    assert!(checked > 3000);
}

/// Image after each event, by `Event-Sequence` (the same event has the
/// same number on both connections of a recording).
fn by_sequence(file: &str) -> BTreeMap<u64, NodeImage> {
    let mut m = model();
    let mut out = BTreeMap::new();
    for ev in capture_events(file) {
        m.apply(&ev, when(&ev));
        if let Some(seq) = ev.get("Event-Sequence").and_then(|s| s.parse().ok()) {
            out.insert(seq, m.image());
        }
    }
    out
}

#[test]
fn json_and_plain_recordings_give_the_same_images() {
    let mut pairs = 0;
    for file in all_captures() {
        let Some(stem) = file.strip_suffix(".json.txt") else {
            continue;
        };
        let plain = format!("{stem}.plain.txt");
        if !all_captures().contains(&plain) || stem.starts_with("01") {
            // 01 was recorded twice (one run per format), not side by side.
            continue;
        }
        let a = by_sequence(&file);
        let b = by_sequence(&plain);
        let mut common = 0;
        for (seq, img) in &a {
            // API events exist only on the json connection.
            if let Some(other) = b.get(seq) {
                assert_eq!(img.tables, other.tables, "{stem} at sequence {seq}");
                common += 1;
            }
        }
        assert!(
            common * 2 > b.len(),
            "{stem}: only {common} events in common"
        );
        assert_eq!(
            a.values().last().map(|i| &i.tables),
            b.values().last().map(|i| &i.tables)
        );
        pairs += 1;
    }
    assert!(pairs >= 10);
}

/// What `uuid_dump` would say about each live channel: its last event with
/// variables, refreshed with the headers of every later event about it.
#[derive(Default)]
struct Dumps(HashMap<String, Event>);

impl Dumps {
    fn see(&mut self, ev: &Event) {
        let Some(uuid) = ev.unique_id() else { return };
        if ev.get("Channel-State").is_none() {
            return;
        }
        let has_vars = ev.headers().any(|(k, _)| k.starts_with("variable_"));
        if has_vars || !self.0.contains_key(uuid) {
            self.0.insert(uuid.to_owned(), ev.clone());
        } else if let Some(dump) = self.0.get_mut(uuid) {
            for (k, v) in ev.headers() {
                dump.set(k, v);
            }
        }
    }

    fn snapshot(&self, live: &Model) -> Vec<Event> {
        let mut order: Vec<&crate::model::channel::Channel> = live.channels.values().collect();
        // Newest first: B-legs reach the fresh model before their A-legs.
        order.sort_by(|a, b| (b.created_us, &b.uuid).cmp(&(a.created_us, &a.uuid)));
        order
            .into_iter()
            .map(|c| {
                let mut d = self.0[&c.uuid].clone();
                d.set("Event-Name", "CHANNEL_DATA");
                d
            })
            .collect()
    }
}

/// The listings a resync reads, as the live model knows them.
fn listings(live: &Model) -> (Vec<ValetEntry>, Vec<ConferenceEntry>, Vec<QueueEntry>) {
    let mut valet = Vec::new();
    let mut confs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut queues: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for c in live.channels.values() {
        if let Some((lot, slot)) = &c.valet {
            valet.push(ValetEntry {
                lot: lot.clone(),
                slot: slot.clone(),
                uuid: c.uuid.clone(),
            });
        }
        if let Some(r) = &c.room {
            confs
                .entry(r.name.clone())
                .or_default()
                .push(c.uuid.clone());
        }
        if let Some(q) = &c.queue {
            queues
                .entry(q.name.clone())
                .or_default()
                .push(c.uuid.clone());
        }
    }
    let confs = confs
        .into_iter()
        .map(|(name, members)| ConferenceEntry { name, members })
        .collect();
    let queues = queues
        .into_iter()
        .map(|(name, waiting)| QueueEntry {
            kind: QueueKind::CallCenter,
            name,
            waiting,
        })
        .collect();
    (valet, confs, queues)
}

#[test]
fn resync_from_a_snapshot_rebuilds_the_live_image() {
    let mut compared = 0;
    for file in all_captures().iter().filter(|f| with_events(f)) {
        let mut live = model();
        let mut dumps = Dumps::default();
        for (i, ev) in capture_events(file).iter().enumerate() {
            live.apply(ev, when(ev));
            dumps.see(ev);
            // A hanging-up channel is not in a snapshot any more.
            if live.channels.is_empty() || live.channels.values().any(|c| c.hungup) {
                continue;
            }
            let mut fresh = model();
            for d in dumps.snapshot(&live) {
                fresh.apply(&d, when(ev));
            }
            let (valet, confs, queues) = listings(&live);
            fresh.apply_valet(&valet, when(ev));
            fresh.apply_conferences(&confs, when(ev));
            fresh.apply_queues(&queues, when(ev));
            let (a, b) = (live.image(), fresh.image());
            assert_eq!(a.tables, b.tables, "{file} after event #{i} {ev:?}");
            assert_eq!(
                (a.status.calls, a.status.channels),
                (b.status.calls, b.status.channels)
            );
            compared += 1;
        }
    }
    assert!(compared > 500, "only {compared} moments compared");
}

#[test]
fn every_table_is_exercised_by_the_captures() {
    let mut seen = std::collections::BTreeSet::new();
    for file in all_captures().iter().filter(|f| with_events(f)) {
        super::replay(file, |_, up, _| {
            seen.extend(up.change.ops.iter().map(|op| op.table));
            // Claims are written by the publisher from the model's ops.
            if !up.members.is_empty() {
                seen.insert(Table::Members);
            }
        });
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), Table::ALL.to_vec());
}

/// A small deterministic generator (no seed files, no flakes).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn mangled_events_never_panic_and_keep_the_invariants() {
    let garbage = [
        "",
        "HANGUP",
        "hangup",
        "answered",
        "CS_DESTROY",
        "-1",
        "NaN",
        "\u{0}",
        "x@y",
        "ARRAY::a|:b",
    ];
    let mut rng = Lcg(7);
    for file in [
        "03-group-intercept.json.txt",
        "07-callcenter.json.txt",
        "06-conference.plain.txt",
    ] {
        let events = capture_events(file);
        let mut m = model();
        let mut mirror = Mirror::from_image(&m.image());
        for ev in events.iter().cycle().take(events.len() * 3) {
            let headers: Vec<(String, String)> = ev
                .headers()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let mut bad = Event::default();
            let keep = rng.next(headers.len() + 1);
            for (i, (k, v)) in headers.into_iter().enumerate().take(keep.max(1)) {
                // Keep Event-Name mostly, garble some values, swap uuids.
                let v = match rng.next(8) {
                    0 if i > 0 => garbage[rng.next(garbage.len())].to_owned(),
                    1 if k.contains("UUID") || k.contains("Unique-ID") => format!("{v}-x"),
                    _ => v,
                };
                bad.push(k, v);
            }
            let up = m.apply(&bad, when(ev));
            mirror.apply(&up);
            assert_eq!(mirror.tables, m.image().tables);
            assert_eq!(m.image().tables, m.recomputed_tables());
        }
    }
}
