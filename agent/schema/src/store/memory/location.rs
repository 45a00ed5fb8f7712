//! The location side of [`super::MemStore`]: `reg:` bindings and
//! `tenant:` pins with the Redis backend's semantics (expired bindings
//! dropped on write, the key gone [`KEY_GRACE`] after its latest binding,
//! empty hashes vanish, domains and users lower-cased).

use std::collections::BTreeMap;

use crate::binding::{Binding, KEY_GRACE};

/// One `reg:{domain}:{user}` key.
#[derive(Default)]
pub(super) struct MemReg {
    /// contact -> binding.
    fields: BTreeMap<String, Binding>,
    /// Key expiry, wall-clock ms.
    expires_ms: u64,
}

/// The `reg:` keys, by key name.
#[derive(Default)]
pub(super) struct Regs(BTreeMap<String, MemReg>);

impl Regs {
    /// Drops keys whose TTL ran out, as Redis would.
    fn expire(&mut self, now_ms: u64) {
        self.0.retain(|_, r| r.expires_ms > now_ms);
    }

    pub(super) fn put(&mut self, key: String, b: &Binding, now_ms: u64) {
        self.expire(now_ms);
        let reg = self.0.entry(key.clone()).or_default();
        reg.fields.insert(b.contact.clone(), b.clone());
        reg.fields.retain(|_, b| b.live_at(now_ms));
        let grace = u64::try_from(KEY_GRACE.as_millis()).unwrap_or(u64::MAX);
        match reg.fields.values().map(|b| b.expires_ms).max() {
            Some(latest) => reg.expires_ms = latest.saturating_add(grace),
            None => {
                self.0.remove(&key);
            }
        }
    }

    pub(super) fn remove(&mut self, key: &str, contact: &str, now_ms: u64) {
        self.expire(now_ms);
        if let Some(reg) = self.0.get_mut(key) {
            reg.fields.remove(contact);
            if reg.fields.is_empty() {
                self.0.remove(key);
            }
        }
    }

    pub(super) fn remove_all(&mut self, key: &str) {
        self.0.remove(key);
    }

    /// Every live binding under keys `{head}{domain}:{user}`.
    pub(super) fn all(
        &mut self,
        head: &str,
        max_users: usize,
        now_ms: u64,
    ) -> Vec<(String, String, Binding)> {
        self.expire(now_ms);
        let mut out = Vec::new();
        for (key, reg) in self.0.iter().take(max_users) {
            let Some((d, u)) = key.strip_prefix(head).and_then(|r| r.split_once(':')) else {
                continue;
            };
            for b in reg.fields.values().filter(|b| b.live_at(now_ms)) {
                out.push((d.to_owned(), u.to_owned(), b.clone()));
            }
        }
        out
    }

    pub(super) fn get(&mut self, key: &str, now_ms: u64) -> Vec<Binding> {
        self.expire(now_ms);
        self.0.get(key).map_or_else(Vec::new, |r| {
            r.fields
                .values()
                .filter(|b| b.live_at(now_ms))
                .cloned()
                .collect()
        })
    }
}
