//! Long-poll sessions across the cluster: a request that reaches a node other than the
//! one holding its session (as behind a round-robin load balancer) is carried to the
//! owner as a message targeted at it (kind 6), and the owner's answer back the same way
//! (kind 7). The reactors on both ends do the rest (`transport::long_poll::forward`).
//!
//! A request goes to its node unless that node was taken for gone (not heard from for
//! the down period), and only while both of this node's Redis connections are up;
//! otherwise the session is out of reach and the request is answered as for a gone
//! session, at once. (A node never heard from may have just started: the request goes,
//! and if nobody answers, the asking node's deadline ends the wait.)

use super::link::{Role, Shared};
use super::publisher::Publish;
use super::wire::{Envelope, Kind};
use crate::logging::log_throttled;
use crate::transport::long_poll::{Asker, ForwardError, RemoteAnswer, RemoteRequest, ReplyTo, SessionForwarder};
use crate::transport::reactor::RemoteSessions;
use std::sync::{Arc, OnceLock};

/// The cluster's side of the endpoint's [`SessionForwarder`]: requests and answers go
/// out through the publish queue.
pub(super) struct Forwarder {
    pub(super) shared: Arc<Shared>,
    pub(super) publish: Publish,
}

impl SessionForwarder for Forwarder {
    fn forward(&self, node: &str, reply_to: ReplyTo, request: &RemoteRequest) -> Result<(), ForwardError> {
        let connected = self.shared.is_up(Role::Publisher) && self.shared.is_up(Role::Subscriber);
        if !connected || self.shared.is_gone(node) {
            return Err(ForwardError::Unreachable);
        }
        let message = self.shared.origin.long_poll_request(node, reply_to, request);
        if self.publish.send(message, false) { Ok(()) } else { Err(ForwardError::Busy) }
    }

    fn answer(&self, asker: &Asker, answer: &RemoteAnswer) {
        if !self.publish.send(self.shared.origin.long_poll_answer(asker, answer), false) {
            // Its connection waits for it until its deadline, then takes the session for gone.
            log_throttled!(
                log::Level::Warn,
                "cluster: the answer to a forwarded long-poll request was lost: the publish queue is full"
            );
        }
    }
}

/// Hands a long-poll message meant for this node (of `incarnation`) to the reactors,
/// once the endpoint has linked them (`sessions`).
pub(super) fn receive(sessions: &OnceLock<RemoteSessions>, incarnation: u64, envelope: Envelope<'_>) {
    let Some(sessions) = sessions.get() else { return };
    let received = match envelope.kind {
        Kind::LongPollRequest => envelope.long_poll_request().map(|(asker, request)| sessions.serve(asker, request)),
        Kind::LongPollAnswer => envelope.long_poll_answer().map(|(to, reply_to, answer)| {
            // An answer for an earlier run of this node has no connection here.
            if to == incarnation {
                sessions.answered(reply_to, answer);
            }
        }),
        _ => Ok(()),
    };
    if let Err(err) = received {
        log::warn!("cluster: ignoring a long-poll message: {err}");
    }
}
