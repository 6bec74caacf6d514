//! The seam between presence and what replicates this node's entries to the other
//! nodes of a cluster (feature `redis`: `remote.rs` and `src/cluster/`).

use serde_json::{Map, Value};

/// Takes this node's presence changes as they happen. Called under the tracker's lock,
/// so in the order the changes happen; it must not block.
pub(crate) trait Replication: Send + Sync {
    /// `key` was tracked on `topic` with `meta` (its `phx_ref` included).
    fn joined(&self, topic: &str, key: &str, meta: &Map<String, Value>);
    /// The meta of `key` on `topic` went from `old` to `new`.
    fn updated(&self, topic: &str, key: &str, old: &Map<String, Value>, new: &Map<String, Value>);
    /// The entry with `meta` left `topic`.
    fn left(&self, topic: &str, meta: &Map<String, Value>);
}
