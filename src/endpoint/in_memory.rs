//! Connections that live in memory, with no socket and no reactor (the
//! [`testing`](crate::testing) module's): the endpoint ends them at shutdown as the
//! reactors end theirs.

use crate::protocol::session::Session;
use crate::transport::handler::{ConnectionHandler, Hangup};
use parking_lot::Mutex;
use std::sync::{Arc, Weak};

/// An in-memory connection's session; `None` once the connection has ended.
pub(crate) type SessionSlot = Arc<SessionSlotInner>;
type SessionSlotInner = Mutex<Option<Session>>;

/// The endpoint's in-memory connections.
#[derive(Default)]
pub(crate) struct InMemoryConnections {
    slots: Mutex<Vec<Weak<SessionSlotInner>>>,
}

impl InMemoryConnections {
    /// Adds a connection, forgetting those that are gone.
    pub(crate) fn add(&self, slot: &SessionSlot) {
        let mut slots = self.slots.lock();
        slots.retain(|slot| slot.strong_count() > 0);
        slots.push(Arc::downgrade(slot));
    }

    /// Server shutdown: every connection's channels terminate with `{shutdown, draining}`.
    pub(crate) fn drain(&self) {
        for slot in std::mem::take(&mut *self.slots.lock()) {
            let session = slot.upgrade().and_then(|slot| slot.lock().take());
            if let Some(mut session) = session {
                session.end(Hangup::Draining);
            }
        }
    }
}
