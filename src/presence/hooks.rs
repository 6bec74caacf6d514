//! The application's presence callbacks: `fetch`, which enriches presences before
//! they go out (Phoenix's `Presence.fetch/2`), and `handle_metas`, told of every
//! topic's changes (Phoenix 1.7's `handle_metas/4`).

use super::Presence;
use parking_lot::Mutex;
use serde_json::{Map, Value};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

/// Presences as they go out: `{key: {"metas": [...], ...}}`, what
/// [`EndpointBuilder::presence_fetch`](crate::EndpointBuilder::presence_fetch) enriches.
///
/// ```
/// use phx_channels::presence::Presences;
/// use serde_json::json;
///
/// let mut presences: Presences = serde_json::from_value(json!({"42": {"metas": [{"phx_ref": "F1"}]}}))?;
/// presences["42"]["name"] = json!("Ada");
/// # Ok::<(), serde_json::Error>(())
/// ```
pub type Presences = Map<String, Value>;

type FetchFn = dyn Fn(&str, &mut Presences) + Send + Sync;
type MetasFn = dyn FnMut(&PresenceChange<'_>) + Send;

/// One topic's presence change, for the callback set with
/// [`EndpointBuilder::presence_handle_metas`](crate::EndpointBuilder::presence_handle_metas).
#[derive(Debug)]
#[non_exhaustive]
pub struct PresenceChange<'a> {
    /// The topic.
    pub topic: &'a str,
    /// Who joined, as in the `presence_diff` (fetched).
    pub joins: &'a Presences,
    /// Who left, as in the `presence_diff` (fetched).
    pub leaves: &'a Presences,
    /// Everyone on the topic now, `{key: {"metas": [...]}}` (not fetched).
    pub presences: &'a Presences,
}

/// The callbacks, as set on the endpoint's builder.
#[derive(Default)]
pub(crate) struct Hooks {
    fetch: Option<Arc<FetchFn>>,
    handle_metas: Option<Mutex<Box<MetasFn>>>,
}

impl Hooks {
    pub(crate) fn set_fetch(&mut self, fetch: impl Fn(&str, &mut Presences) + Send + Sync + 'static) {
        self.fetch = Some(Arc::new(fetch));
    }

    pub(crate) fn set_handle_metas(&mut self, handle_metas: impl FnMut(&PresenceChange<'_>) + Send + 'static) {
        self.handle_metas = Some(Mutex::new(Box::new(handle_metas)));
    }

    /// Enriches `presences` of `topic` with the application's `fetch`, if it set one.
    /// A panicking `fetch` is logged, and the presences go out as they are.
    pub(crate) fn fetch(&self, topic: &str, presences: &mut Presences) {
        let Some(fetch) = &self.fetch else { return };
        if presences.is_empty() {
            return;
        }
        if catch_unwind(AssertUnwindSafe(|| fetch(topic, presences))).is_err() {
            log::error!("the presence fetch callback panicked on {topic}");
        }
    }
}

impl Presence {
    /// After a topic's diff went out: tells `handle_metas`, if the application set one.
    /// Runs on the presence thread, never on a channel's. A panic is logged.
    pub(super) fn after_diff(&self, topic: &str, joins: &Presences, leaves: &Presences) {
        let Some(handle_metas) = &self.hooks.handle_metas else { return };
        let presences = self.grouped(topic);
        let change = PresenceChange { topic, joins, leaves, presences: &presences };
        let mut handle_metas = handle_metas.lock();
        if catch_unwind(AssertUnwindSafe(|| handle_metas(&change))).is_err() {
            log::error!("the presence handle_metas callback panicked on {topic}");
        }
    }
}
