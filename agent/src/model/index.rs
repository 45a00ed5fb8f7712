//! The incremental publisher: what each call contributes to the published
//! tables, the tables' last published values, and the diff between them.
//!
//! Every call contributes a small set of [`Item`]s (its record, its ringing
//! and group entries, its lot, room and queue memberships, its SIP
//! Call-IDs). When a call changes, its new items are diffed against its old
//! ones; only the fields whose items changed become dirty, and only the
//! dirty fields whose value then differs from the published one become a
//! [`HashOp`]. So the cost of an event depends on what it touched, never on
//! how many calls the box holds.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use locus_schema::{HashOp, Table};

use super::channel::CallId;

/// One contribution of a call to one field of one table.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Item {
    pub table: Table,
    pub field: String,
    /// Sort key within the field (e.g. ringing since, created time).
    pub order: u64,
    /// Second sort key (a uuid), so entries are in a stable order.
    pub tie: String,
    /// The entry: a JSON value, a uuid, or nothing for counted tables.
    pub payload: String,
}

/// Position of an entry within a field: sort keys plus the owning call, so
/// two calls never overwrite each other's entry.
type Slot = (u64, String, CallId);

/// The entries of one field, sorted by slot. Nearly every field has one
/// entry (a call's record, its Call-ID) and lists are short, so a sorted
/// vector: a `BTreeMap` node costs ~700 bytes even for one entry, which
/// was a third of the model's memory per call.
#[derive(Debug, Default)]
struct Entries(Vec<(Slot, String)>);

impl Entries {
    fn insert(&mut self, slot: Slot, payload: String) {
        match self.0.binary_search_by(|(s, _)| s.cmp(&slot)) {
            Ok(i) => self.0[i].1 = payload,
            Err(i) => self.0.insert(i, (slot, payload)),
        }
    }

    fn remove(&mut self, slot: &Slot) {
        if let Ok(i) = self.0.binary_search_by(|(s, _)| s.cmp(slot)) {
            self.0.remove(i);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    /// Payloads in slot order.
    fn values(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(_, p)| p)
    }
}

/// Per table: field -> its entries.
type TableIndex = HashMap<String, Entries>;

fn pos(t: Table) -> usize {
    match t {
        Table::Calls => 0,
        Table::Ringing => 1,
        Table::Groups => 2,
        Table::Lots => 3,
        Table::Rooms => 4,
        Table::Queues => 5,
        Table::Sipcalls => 6,
        // Claims are the publisher's (crate::publisher), never a call's.
        Table::Members => 7,
    }
}

/// The published state and the contributions it is built from.
#[derive(Debug, Default)]
pub(crate) struct Publisher {
    index: [TableIndex; 8],
    contribs: HashMap<CallId, Vec<Item>>,
    published: [HashMap<String, String>; 8],
    dirty: BTreeSet<(Table, String)>,
}

impl Publisher {
    /// Replaces the contributions of call `id` (empty when the call is
    /// gone), marking the fields whose entries changed.
    pub fn set(&mut self, id: CallId, mut items: Vec<Item>) {
        items.sort();
        items.dedup_by(|a, b| {
            (&a.table, &a.field, a.order, &a.tie) == (&b.table, &b.field, b.order, &b.tie)
        });
        let old = self.contribs.remove(&id).unwrap_or_default();
        if old != items {
            for it in old.iter().filter(|it| !items.contains(it)) {
                let fields = &mut self.index[pos(it.table)];
                if let Some(entries) = fields.get_mut(&it.field) {
                    entries.remove(&(it.order, it.tie.clone(), id));
                    if entries.is_empty() {
                        fields.remove(&it.field);
                    }
                }
                self.dirty.insert((it.table, it.field.clone()));
            }
            for it in items.iter().filter(|it| !old.contains(it)) {
                self.index[pos(it.table)]
                    .entry(it.field.clone())
                    .or_default()
                    .insert((it.order, it.tie.clone(), id), it.payload.clone());
                self.dirty.insert((it.table, it.field.clone()));
            }
        }
        if !items.is_empty() {
            self.contribs.insert(id, items);
        }
    }

    /// The value a field should have now, from its entries.
    fn value(&self, table: Table, field: &str) -> Option<String> {
        let entries = self.index[pos(table)].get(field)?;
        match table {
            Table::Calls | Table::Lots | Table::Sipcalls | Table::Members => {
                entries.values().next().cloned()
            }
            Table::Ringing | Table::Groups => {
                // Each entry is already a JSON object, so the list is their
                // join: exactly what serde_json writes for the Vec.
                let len = entries.values().map(|p| p.len() + 1).sum::<usize>() + 2;
                let mut out = String::with_capacity(len);
                out.push('[');
                for (i, p) in entries.values().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(p);
                }
                out.push(']');
                Some(out)
            }
            Table::Rooms | Table::Queues => Some(entries.len().to_string()),
        }
    }

    /// The writes and deletes that bring the published tables up to date
    /// with the contributions, in (table, field) order.
    pub fn flush(&mut self) -> Vec<HashOp> {
        let mut ops = Vec::new();
        for (table, field) in std::mem::take(&mut self.dirty) {
            let value = self.value(table, &field);
            let published = &mut self.published[pos(table)];
            if published.get(&field) == value.as_ref() {
                continue;
            }
            match &value {
                Some(v) => {
                    published.insert(field.clone(), v.clone());
                }
                None => {
                    published.remove(&field);
                }
            }
            ops.push(HashOp {
                table,
                field,
                value,
            });
        }
        ops
    }

    /// Every published field of every table.
    pub fn tables(&self) -> BTreeMap<Table, BTreeMap<String, String>> {
        Table::ALL
            .into_iter()
            .filter_map(|t| {
                let fields = &self.published[pos(t)];
                (!fields.is_empty()).then(|| {
                    let m = fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                    (t, m)
                })
            })
            .collect()
    }

    /// The published value of one field.
    #[cfg(test)]
    pub fn get(&self, table: Table, field: &str) -> Option<&str> {
        self.published[pos(table)].get(field).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(table: Table, field: &str, order: u64, tie: &str, payload: &str) -> Item {
        Item {
            table,
            field: field.into(),
            order,
            tie: tie.into(),
            payload: payload.into(),
        }
    }

    #[test]
    fn lists_are_ordered_and_unchanged_items_write_nothing() {
        let mut p = Publisher::default();
        p.set(
            1,
            vec![item(Table::Ringing, "d/1001", 20, "b", r#"{"b":1}"#)],
        );
        p.set(
            2,
            vec![item(Table::Ringing, "d/1001", 10, "a", r#"{"a":1}"#)],
        );
        let ops = p.flush();
        assert_eq!(ops.len(), 1);
        assert_eq!(ops[0].value.as_deref(), Some(r#"[{"a":1},{"b":1}]"#));
        p.set(
            1,
            vec![item(Table::Ringing, "d/1001", 20, "b", r#"{"b":1}"#)],
        );
        assert!(p.flush().is_empty());
        p.set(1, vec![]);
        p.set(2, vec![]);
        let ops = p.flush();
        assert_eq!(ops[0].value, None);
        assert!(p.tables().is_empty());
    }

    #[test]
    fn two_calls_on_one_field_do_not_clobber_each_other() {
        let mut p = Publisher::default();
        p.set(1, vec![item(Table::Calls, "u", 0, "", "one")]);
        p.set(2, vec![item(Table::Calls, "u", 0, "", "two")]);
        p.set(1, vec![]);
        let ops = p.flush();
        assert_eq!(ops[0].value.as_deref(), Some("two"));
        p.set(1, vec![item(Table::Rooms, "d/r", 0, "x", "")]);
        p.set(2, vec![item(Table::Rooms, "d/r", 0, "y", "")]);
        p.flush();
        assert_eq!(p.get(Table::Rooms, "d/r"), Some("2"));
    }
}
