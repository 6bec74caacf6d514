//! The endpoint's sockets as the transport sees them: every new connection's request
//! is answered here, and an upgrade runs the socket's `connect` on a connect worker,
//! then opens a [`Session`] or refuses.

use super::connect_pool::ConnectPool;
use super::handshake::{self, Decision, Upgrade};
use super::routes::Routes;
use super::session::Session;
use crate::channel_runtime::ChannelRuntime;
use crate::logging;
use crate::telemetry::{Event, Outcome};
use crate::transport::handler::{Answer, ConnectionLink, Opened, Peers, RequestHandler, Verdict};
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
}

/// Runs the socket's `connect` and `id` (on a connect worker), and opens a session
/// or refuses. A panicking `connect` refuses with 403.
fn connect(upgrade: Upgrade, runtime: Arc<ChannelRuntime>, link: &ConnectionLink) -> Verdict {
    let Upgrade { mount, params, info, serializer, response } = upgrade;
    let socket = &mount.socket;
    let began = Instant::now();
    let verdict = socket.run_connect(&params, &info);
    let took = began.elapsed();
    let outcome = if verdict.is_ok() { Outcome::Ok } else { Outcome::Refused };
    runtime.telemetry.emit(|hook| {
        let params = logging::filter(&serde_json::Value::Object(params.clone()), &runtime.settings.filter_parameters);
        hook(&Event::SocketConnected {
            endpoint_path: &mount.path,
            transport: "websocket",
            serializer,
            params: &params,
            outcome,
            duration: took,
        })
    });
    let settings = &socket.settings;
    let log_line = |verb: &str, took: Duration| {
        if let Some(level) = settings.log_connect {
            let filtered =
                logging::filter(&serde_json::Value::Object(params.clone()), &runtime.settings.filter_parameters);
            log::log!(
                level,
                "{verb} {} in {}\n  Transport: :websocket\n  Serializer: {}\n  Parameters: {filtered}",
                mount.path,
                logging::duration(took),
                serializer.name()
            );
        }
    };
    match verdict {
        Ok((assigns, id)) => {
            log_line("CONNECTED TO", took);
            let outbound = link.outbound(settings.outbound);
            let session = Session::new(runtime.clone(), mount.clone(), serializer, assigns, id, outbound.clone());
            Verdict::Open(Box::new(Opened {
                response,
                handler: Box::new(session),
                outbound,
                idle_timeout: settings.idle_timeout,
                max_frame_size: settings.max_frame_size,
            }))
        }
        Err(refusal) => {
            log_line("REFUSED CONNECTION TO", took);
            Verdict::Refuse(http::text(refusal.status, &refusal.body))
        }
    }
}
