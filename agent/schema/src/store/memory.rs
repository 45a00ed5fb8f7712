//! In-memory store (skeleton; being implemented).

use crate::Keys;

/// In-process store.
pub struct MemStore {
    _keys: Keys,
}

impl MemStore {
    /// A new empty store.
    pub fn new(keys: Keys) -> Self {
        Self { _keys: keys }
    }
}
