//! One key's presence on a topic: Phoenix's `Presence.get_by_key/2`.

use super::{PendingDiff, Presence};
use serde_json::{Map, Value};

impl Presence {
    /// The presence of `key` on `topic`, as it appears in [`list`](Presence::list):
    /// `{"metas": [...]}` (one meta per tracking channel or handle, every node's
    /// included), enriched by the endpoint's
    /// [`presence_fetch`](crate::EndpointBuilder::presence_fetch). `None` when nobody
    /// tracks `key` there.
    ///
    /// ```
    /// use phx_channels::{Endpoint, testing};
    /// use serde_json::json;
    ///
    /// let endpoint = testing::endpoint(Endpoint::builder())?;
    /// let _bot = endpoint.presence().track_external("room:lobby", "bot", json!({"kind": "helper"}))?;
    /// let bot = endpoint.presence().get_by_key("room:lobby", "bot").expect("tracked");
    /// assert_eq!(bot["metas"][0]["kind"], "helper");
    /// assert_eq!(endpoint.presence().get_by_key("room:lobby", "nobody"), None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_by_key(&self, topic: &str, key: &str) -> Option<Value> {
        let mut found = Map::new();
        {
            let topics = self.topics.lock();
            let state = topics.get(topic)?;
            let mut nodes: Vec<_> = state.nodes.iter().collect();
            nodes.sort_by(|a, b| a.0.cmp(b.0));
            for entry in nodes.into_iter().flat_map(|(_, entries)| entries).filter(|entry| &*entry.key == key) {
                PendingDiff::add(&mut found, key, &entry.meta);
            }
        }
        self.hooks.fetch(topic, &mut found);
        found.remove(key)
    }
}
