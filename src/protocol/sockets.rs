//! The endpoint's sockets as the transport sees them: every new connection's request
//! is answered here, and an upgrade (or a new long-poll session) runs the socket's
//! `connect` on a connect worker, then opens a [`Session`] or refuses.

use super::connect_pool::ConnectPool;
use super::handshake::{self, ConnectRequest, Decision, Upgrade};
use super::long_poll;
use super::routes::Routes;
use super::session::Session;
use super::user_socket::Refusal;
use crate::channel_runtime::ChannelRuntime;
use crate::logging;
use crate::socket::Assigns;
use crate::telemetry::{Event, Outcome};
use crate::transport::handler::{
    Answer, ConnectionLink, LongPollCheck, Opened, Peers, RequestHandler, SessionLink, Verdict,
};
use crate::transport::http;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::handshake::server::Request;

pub(crate) struct Sockets {
    pub(crate) routes: Routes,
    pub(crate) runtime: Arc<ChannelRuntime>,
    pub(crate) connect_pool: ConnectPool,
}

impl RequestHandler for Sockets {
    fn request(&self, request: &Request, peers: Peers, link: ConnectionLink) -> Answer {
        match handshake::decide(request, &self.routes, peers) {
            Decision::Respond(bytes) => Answer::Respond(bytes),
            Decision::Connect(upgrade) => {
                let runtime = self.runtime.clone();
                self.connect_pool.submit(Box::new(move || {
                    let verdict = connect(*upgrade, runtime, &link);
                    link.deliver(verdict);
                }));
                Answer::Deciding
            }
        }
    }

    fn unparsed_request(&self, head: &[u8]) -> Bytes {
        handshake::answer_other(head, &self.routes)
    }

    fn long_poll(&self, request: &Request, peers: Peers) -> Option<LongPollCheck> {
        long_poll::check(request, &self.routes, peers)
    }

    fn open_session(&self, request: &Request, peers: Peers, link: SessionLink) {
        let Some(request) = long_poll::connect_request(request, &self.routes, peers) else { return link.refuse() };
        let runtime = self.runtime.clone();
        self.connect_pool.submit(Box::new(move || match run_connect(&request, &runtime, Transport::LongPoll) {
            Ok((assigns, id)) => {
                let outbound = link.outbound();
                let ConnectRequest { mount, serializer, .. } = request;
                let session = Session::new(runtime, mount, serializer, assigns, id, outbound.clone());
                link.open(Box::new(session), outbound);
            }
            Err(_) => link.refuse(),
        }));
    }
}

/// The transport a `connect` is for, as its log line names it.
#[derive(Clone, Copy)]
enum Transport {
    WebSocket,
    LongPoll,
}

/// Runs the socket's `connect` and opens a session on the WebSocket, or refuses.
fn connect(upgrade: Upgrade, runtime: Arc<ChannelRuntime>, link: &ConnectionLink) -> Verdict {
    let Upgrade { request, response, deflate } = upgrade;
    match run_connect(&request, &runtime, Transport::WebSocket) {
        Ok((assigns, id)) => {
            let settings = &request.mount.socket.settings;
            let outbound = link.outbound(settings.outbound, deflate);
            let (idle_timeout, max_frame_size) = (settings.idle_timeout, settings.max_frame_size);
            let ConnectRequest { mount, serializer, .. } = request;
            let session = Session::new(runtime, mount, serializer, assigns, id, outbound.clone());
            Verdict::Open(Box::new(Opened {
                response,
                handler: Box::new(session),
                outbound,
                idle_timeout,
                max_frame_size,
                deflate,
            }))
        }
        Err(refusal) => Verdict::Refuse(http::text(refusal.status, &refusal.body)),
    }
}

/// Runs the socket's `connect` and `id` (on a connect worker) and logs the outcome.
/// A panicking `connect` refuses with 403.
fn run_connect(
    request: &ConnectRequest,
    runtime: &ChannelRuntime,
    transport: Transport,
) -> Result<(Assigns, Option<String>), Refusal> {
    let ConnectRequest { mount, params, info, serializer } = request;
    let socket = &mount.socket;
    let began = Instant::now();
    let verdict = socket.run_connect(params, info);
    let took = began.elapsed();
    let transport = match transport {
        Transport::WebSocket => "websocket",
        Transport::LongPoll => "longpoll",
    };
    let outcome = if verdict.is_ok() { Outcome::Ok } else { Outcome::Refused };
    runtime.telemetry.emit(|hook| {
        let params = logging::filter(&serde_json::Value::Object(params.clone()), &runtime.settings.filter_parameters);
        hook(&Event::SocketConnected {
            endpoint_path: &mount.path,
            transport,
            serializer: *serializer,
            params: &params,
            outcome,
            duration: took,
        })
    });
    let log_line = |verb: &str, took: Duration| {
        if let Some(level) = socket.settings.log_connect {
            let filtered =
                logging::filter(&serde_json::Value::Object(params.clone()), &runtime.settings.filter_parameters);
            log::log!(
                level,
                "{verb} {} in {}\n  Transport: :{transport}\n  Serializer: {}\n  Parameters: {filtered}",
                mount.path,
                logging::duration(took),
                serializer.name()
            );
        }
    };
    match &verdict {
        Ok(_) => log_line("CONNECTED TO", took),
        Err(_) => log_line("REFUSED CONNECTION TO", took),
    }
    verdict
}
