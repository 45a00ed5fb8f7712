//! The cost of an event must not grow with the number of live calls.
//! Measured as what an event writes and which fields it touches, not as
//! time (timing tests are flaky on a shared machine).

use locus_esl::Event;
use locus_schema::Table;

use super::{chan, model};
use crate::model::Model;

fn uuid(prefix: char, i: usize) -> String {
    format!("{prefix}{i:07}-0000-4000-8000-000000000000")
}

/// The events of one call to ext 20000+i, of group g{i % 997} (or of a
/// group of its own for the probe).
fn call(i: usize) -> Vec<Event> {
    let (a, b) = (uuid('a', i), uuid('b', i));
    let created = (1_000_000 + i as u64).to_string();
    let ext = (20_000 + i).to_string();
    let group = if i < 1_000_000 {
        format!("g{}", i % 997)
    } else {
        "probe".to_owned()
    };
    let cid = format!("cid-{i}");
    let a_vars = [
        ("Call-Direction", "inbound"),
        ("Caller-Channel-Created-Time", created.as_str()),
        ("variable_domain_name", "scale.test"),
        ("variable_dialed_extension", ext.as_str()),
        ("variable_called_party_callgroup", group.as_str()),
        ("variable_sip_call_id", cid.as_str()),
    ];
    let b_vars = [
        ("Call-Direction", "outbound"),
        ("Caller-Channel-Created-Time", created.as_str()),
        ("variable_originator", a.as_str()),
        ("variable_dialed_extension", ext.as_str()),
    ];
    vec![
        chan("CHANNEL_CREATE", &a, &a_vars),
        chan("CHANNEL_EXECUTE", &a, &a_vars),
        chan("CHANNEL_CREATE", &b, &b_vars),
        chan(
            "CHANNEL_CALLSTATE",
            &b,
            &[("Channel-Call-State", "RINGING")],
        ),
        chan("CHANNEL_ANSWER", &b, &b_vars),
        chan("CHANNEL_ANSWER", &a, &a_vars),
        chan("CHANNEL_BRIDGE", &a, &[("Other-Leg-Unique-ID", b.as_str())]),
        chan("CHANNEL_HANGUP", &b, &[]),
        chan("CHANNEL_HANGUP_COMPLETE", &b, &[]),
        chan("CHANNEL_HANGUP_COMPLETE", &a, &[]),
    ]
}

/// A model holding `n` live calls: half answered, half still ringing.
fn loaded(n: usize) -> Model {
    let mut m = model();
    for i in 0..n {
        let evs = call(i);
        let upto = if i % 2 == 0 { 7 } else { 4 };
        for ev in &evs[..upto] {
            m.apply(ev, 1);
        }
    }
    assert_eq!(m.call_count(), n);
    assert_eq!(m.channel_count(), 2 * n);
    m
}

/// For each event of one more call: (table, field) of every op written.
fn probe(m: &mut Model) -> Vec<Vec<(Table, String)>> {
    // A number no background call uses, with a group of its own.
    call(5_000_000)
        .iter()
        .map(|ev| {
            let up = m.apply(ev, 2);
            up.change
                .ops
                .iter()
                .map(|op| (op.table, op.field.clone()))
                .collect()
        })
        .collect()
}

#[test]
fn per_event_work_does_not_grow_with_live_calls() {
    let small = probe(&mut loaded(10));
    let mut big_model = loaded(10_000);
    let big = probe(&mut big_model);
    assert_eq!(small, big);
    let total: usize = big.iter().map(Vec::len).sum();
    assert!(total > 10, "the probe call must publish something");
    // Every op concerns the probe call, none a background call.
    for (table, field) in big.iter().flatten() {
        let own = field.contains("a5000000")
            || field.contains("5020000")
            || field.contains("cid-5000000")
            || field == "scale.test/probe";
        assert!(own, "{table:?} {field} is not the probe's");
    }
    assert_eq!(big_model.call_count(), 10_000);
}

#[test]
fn idle_events_at_scale_write_nothing() {
    let mut m = loaded(10_000);
    // A dialplan step on a live call, and a heartbeat with the same load.
    let ev = &call(42)[1];
    assert!(m.apply(ev, 3).is_empty());
    let mut hb = Event::new("HEARTBEAT");
    hb.push("Max-Sessions", "1000");
    m.apply(&hb, 3);
    assert!(m.apply(&hb, 4).is_empty());
}
