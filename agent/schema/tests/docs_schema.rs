//! Keeps `docs/redis-schema.md` honest: its JSON examples must parse as
//! the types they illustrate, and the key names it shows must be the ones
//! [`Keys`] builds.

#![allow(clippy::unwrap_used)] // tests may unwrap

use locus_schema::{
    CallRecord, GroupEntry, Keys, MemberEntry, NodeId, Notice, RingEntry, Table, UnregRequest,
};

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/redis-schema.md");
    std::fs::read_to_string(path).unwrap()
}

/// The bodies of fenced blocks whose info string is exactly `info`.
fn blocks(doc: &str, info: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match &mut current {
            None if line.trim() == format!("```{info}") => current = Some(String::new()),
            Some(body) if line.trim() == "```" => {
                out.push(std::mem::take(body));
                current = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

#[test]
fn json_examples_parse_as_their_types() {
    let doc = doc();
    let calls = blocks(&doc, "json CallRecord");
    assert_eq!(calls.len(), 2);
    for c in &calls {
        let rec: CallRecord = serde_json::from_str(c).unwrap();
        assert_eq!(rec.legs.first(), Some(&rec.uuid));
        // Round trip: a misspelled optional field would be silently dropped.
        let raw: serde_json::Value = serde_json::from_str(c).unwrap();
        assert_eq!(serde_json::to_value(&rec).unwrap(), raw);
    }
    let ring: Vec<RingEntry> = serde_json::from_str(&blocks(&doc, "json RingEntry[]")[0]).unwrap();
    assert_eq!(ring.len(), 1);
    let groups: Vec<GroupEntry> =
        serde_json::from_str(&blocks(&doc, "json GroupEntry[]")[0]).unwrap();
    assert_eq!(groups.len(), 2);
    let member: MemberEntry = serde_json::from_str(&blocks(&doc, "json MemberEntry")[0]).unwrap();
    assert_eq!(member.regs.len(), 1);
    let raw: serde_json::Value =
        serde_json::from_str(&blocks(&doc, "json MemberEntry")[0]).unwrap();
    assert_eq!(serde_json::to_value(&member).unwrap(), raw);
    let _: UnregRequest = serde_json::from_str(&blocks(&doc, "json UnregRequest")[0]).unwrap();
    let notice = Notice::parse(blocks(&doc, "json Notice")[0].trim()).unwrap();
    assert_eq!(notice.tables, vec!["calls", "ringing"]);
}

#[test]
fn documented_key_names_are_the_built_ones() {
    let doc = doc();
    let k = Keys::default();
    let id = NodeId::new("id").unwrap();
    let mut built = vec![k.nodes(), k.node(&id), k.events()];
    built.extend(Table::ALL.iter().map(|t| k.table(&id, *t)));
    built.push(k.unreg(&id));
    built.push(k.reg("{domain}", "{user}"));
    built.push(k.tenant("{domain}"));
    for key in built {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "{key} missing from the key table"
        );
    }
}
