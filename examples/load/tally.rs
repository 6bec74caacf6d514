//! What the `connect` and `scale` modes count of their connections and joins, shared by
//! a run's workers and its conductor.

use crate::phoenix::{Head, reply_ok};
use crate::report::ErrorLog;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

#[derive(Default)]
pub(crate) struct JoinTally {
    pub(crate) opened: AtomicUsize,
    pub(crate) failed_conns: AtomicUsize,
    pub(crate) joins_sent: AtomicUsize,
    /// Workers that have sent their joins.
    pub(crate) workers_sent: AtomicUsize,
    pub(crate) joined: AtomicUsize,
    pub(crate) failed_joins: AtomicUsize,
    /// Connections that closed while open, before the run closed them.
    pub(crate) dropped: AtomicUsize,
    pub(crate) errors: ErrorLog,
}

impl JoinTally {
    /// Counts the reply to a join (`data` is the whole frame, kept if the join was refused).
    pub(crate) fn join_reply(&self, head: &Head<'_>, data: &[u8]) {
        if reply_ok(head) {
            self.joined.fetch_add(1, Relaxed);
        } else {
            self.failed_joins.fetch_add(1, Relaxed);
            self.errors.add(format!("join refused: {}", String::from_utf8_lossy(data)));
        }
    }

    /// Counts connection `tag` closing before it opened.
    pub(crate) fn never_opened(&self, tag: usize, error: Option<&str>) {
        self.failed_conns.fetch_add(1, Relaxed);
        self.errors.add(format!("connection {tag}: {}", error.unwrap_or("closed")));
    }

    /// Counts open connection `tag` closing before the run closed it.
    pub(crate) fn dropped(&self, tag: usize, error: Option<&str>) {
        self.dropped.fetch_add(1, Relaxed);
        self.errors.add(format!("connection {tag} dropped: {}", error.unwrap_or("closed")));
    }
}
