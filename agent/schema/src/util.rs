//! The two small helpers every Locus crate needs, in one place: wall-clock
//! milliseconds and a mutex lock that survives poisoning.

use std::sync::{Mutex, MutexGuard};

/// Wall-clock milliseconds since the Unix epoch (heartbeats, binding
/// expiry, snapshot ages); 0 before 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// Locks `m`. A panic elsewhere while it was held leaves the data as the
/// last complete update left it (every user updates in single steps), so
/// a poisoned lock is used as it is rather than spreading the panic.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
