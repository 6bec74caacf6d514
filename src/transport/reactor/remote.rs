//! The reactors' side of a cluster's long-poll traffic: what a cluster hands in (requests
//! other nodes forwarded for sessions held here, answers to requests this node
//! forwarded) goes to the reactor concerned through its mailbox.

use super::ReactorContext;
use crate::transport::long_poll::{
    Asker, RemoteAnswer, RemoteCall, RemoteRequest, ReplyTo, SessionAt, SessionForwarder,
};
use crate::transport::mailbox::Command;
use std::sync::Arc;

/// Where a cluster hands the long-poll requests and answers it receives; cheap to call
/// from the thread that reads the cluster (it verifies a token and posts to a mailbox).
pub(crate) struct RemoteSessions {
    context: Arc<ReactorContext>,
}

impl RemoteSessions {
    /// Links the endpoint's reactors to a cluster: `forwarder` carries their requests
    /// for other nodes' sessions, and the handle returned brings in the others'.
    pub(crate) fn link(context: &Arc<ReactorContext>, forwarder: Arc<dyn SessionForwarder>) -> RemoteSessions {
        if context.forwarder.set(forwarder).is_err() {
            log::error!("the endpoint's long-poll sessions are linked to a cluster twice; keeping the first");
        }
        RemoteSessions { context: context.clone() }
    }

    /// A request `asker` forwarded for a session of this node: goes to the reactor that
    /// holds it, or is answered at once when the token names no session here.
    pub(crate) fn serve(&self, asker: Asker, request: RemoteRequest) {
        // The forwarding node checked the token's age with the mount's settings; it
        // was signed with the same.
        let session = match self.context.tokens.verify(&request.token, None) {
            Some(SessionAt::Here(session)) if session.mount == request.mount => session,
            _ => return self.answer(&asker, &RemoteAnswer::NoSession),
        };
        let reactor = self.context.reactors.get().and_then(|all| all.get(session.reactor));
        match reactor {
            Some(reactor) => reactor.command(Command::Remote(Box::new(RemoteCall { asker, request, session }))),
            None => self.answer(&asker, &RemoteAnswer::NoSession),
        }
    }

    /// The answer to a request this node forwarded, for the connection it came on.
    pub(crate) fn answered(&self, reply_to: ReplyTo, answer: RemoteAnswer) {
        if let Some(reactor) = self.context.reactors.get().and_then(|all| all.get(reply_to.reactor)) {
            reactor.command(Command::Answered(reply_to, answer));
        }
    }

    fn answer(&self, asker: &Asker, answer: &RemoteAnswer) {
        if let Some(forwarder) = self.context.forwarder.get() {
            forwarder.answer(asker, answer);
        }
    }
}
