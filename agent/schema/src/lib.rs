//! The published contract of Locus: what agents write to Redis and what
//! proxies, hooks and `locus inspect` read back.
//!
//! * [`keys`]: the only place Redis key strings are built.
//! * [`binding`]: a registered contact as the proxies mirror it (`reg:`).
//! * [`types`]: node status, call records and index entries (JSON values).
//! * [`change`]: one atomic change of one node's keys ([`NodeChange`]) and
//!   a node's full published content ([`NodeImage`]).
//! * [`store`]: the store traits, one per role ([`Store`] is all of them),
//!   with a Redis and an in-memory backend.
//! * `testing` (feature `testing`): a throwaway `redis-server` for tests.

pub mod binding;
pub mod change;
pub mod keys;
pub mod lease;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod util;

pub use binding::Binding;
pub use change::{HashOp, NodeChange, NodeImage, Table};
pub use keys::{Keys, NodeId, NodeIdError};
pub use lease::ProxyLease;
pub use store::notice::{Notice, NoticeKind};
pub use store::{
    FarmAdmin, FarmRead, FarmView, LocationStore, NodeStore, NodeView, Store, StoreError,
};
pub use types::{
    CallRecord, CallState, Direction, EslLink, GroupEntry, MemberEntry, NodeRole, NodeState,
    NodeStatus, RegClaim, RingEntry, UnregRequest,
};
pub use util::{lock, now_ms};
