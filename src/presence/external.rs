//! Presences tracked by code that is not a channel (a bot, a background job): Phoenix's
//! `Presence.track(pid, topic, key, meta)` from any process. A handle stands for the
//! entry and untracks it when dropped, as the entry of a process goes when it exits.

use super::{Presence, PresenceError};
use crate::subscriber_id::SubscriberId;
use serde_json::Value;
use std::fmt;
use std::sync::{Arc, Weak};

impl Presence {
    /// Tracks `key` on `topic` with `meta` (a JSON object) for code that is not a
    /// channel. Everyone on the topic gets a `presence_diff` with the join, as for a
    /// channel's [`track`](crate::Socket::track); the entry stays until the returned
    /// handle is dropped (or [`untrack`](PresenceHandle::untrack)ed).
    ///
    /// ```
    /// use phx_channels::{Endpoint, testing};
    /// use serde_json::json;
    ///
    /// let endpoint = testing::endpoint(Endpoint::builder())?;
    /// let presence = endpoint.presence();
    /// let bot = presence.track_external("room:lobby", "bot", json!({"status": "idle"}))?;
    /// bot.update(json!({"status": "busy"}))?;
    /// assert_eq!(presence.list("room:lobby")["bot"]["metas"][0]["status"], "busy");
    /// drop(bot);
    /// assert_eq!(presence.list("room:lobby"), json!({}));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn track_external(
        self: &Arc<Self>,
        topic: &str,
        key: &str,
        meta: Value,
    ) -> Result<PresenceHandle, PresenceError> {
        let owner = self.pubsub.next_id();
        self.track(owner, topic, key, meta)?;
        Ok(PresenceHandle { presence: Arc::downgrade(self), owner, topic: topic.to_owned(), key: key.to_owned() })
    }
}

/// A presence tracked with [`Presence::track_external`]; dropping it untracks it.
///
/// ```
/// use phx_channels::{Endpoint, testing};
/// use serde_json::json;
///
/// let endpoint = testing::endpoint(Endpoint::builder())?;
/// let job = endpoint.presence().track_external("jobs", "import-42", json!({"state": "running"}))?;
/// assert_eq!((job.topic(), job.key()), ("jobs", "import-42"));
/// job.untrack();
/// assert_eq!(endpoint.presence().get_by_key("jobs", "import-42"), None);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct PresenceHandle {
    presence: Weak<Presence>,
    owner: SubscriberId,
    topic: String,
    key: String,
}

impl PresenceHandle {
    /// The topic tracked on.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The key tracked.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Replaces the meta; returns the new `phx_ref`. Everyone on the topic gets a
    /// `presence_diff` with the old meta in leaves and the new one in joins.
    pub fn update(&self, meta: Value) -> Result<String, PresenceError> {
        let presence = self.presence.upgrade().ok_or(PresenceError::NoPresence)?;
        presence.update(self.owner, &self.topic, &self.key, meta)
    }

    /// Stops tracking, as dropping the handle does.
    pub fn untrack(self) {}
}

impl Drop for PresenceHandle {
    fn drop(&mut self) {
        if let Some(presence) = self.presence.upgrade() {
            presence.untrack(self.owner, &self.topic, &self.key);
        }
    }
}

impl fmt::Debug for PresenceHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PresenceHandle").field("topic", &self.topic).field("key", &self.key).finish()
    }
}
