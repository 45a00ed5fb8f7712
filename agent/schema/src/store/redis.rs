//! Redis store (skeleton; being implemented).

use std::time::Duration;

use super::StoreError;
use crate::Keys;

/// Redis-backed store.
pub struct RedisStore {
    _keys: Keys,
}

impl RedisStore {
    /// Connects.
    pub async fn connect(_url: &str, keys: Keys, _timeout: Duration) -> Result<Self, StoreError> {
        Ok(Self { _keys: keys })
    }
}
