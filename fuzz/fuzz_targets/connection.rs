//! One connection's whole input path, in process: the HTTP handshake, WebSocket
//! framing, decoding and routing to channels, on a real endpoint over loopback.
//!
//! The first byte picks how the rest is sent:
//! - even: as raw bytes from the first byte of the connection (the handshake path);
//! - odd: after a valid upgrade request, split on `\n` into messages, each sent as one
//!   masked text frame (binary when the message starts with a NUL byte).
#![no_main]

use libfuzzer_sys::fuzz_target;
use phx_channels::{
    Channel, CheckOrigin, Endpoint, Flow, Handled, Info, JoinResult, Payload, Socket, StopReason, UserSocket,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

const UPGRADE: &[u8] = b"GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A channel that uses every callback the wire can reach.
struct Room;

impl Channel for Room {
    fn join(&mut self, _: &str, payload: &Payload, _: &mut Socket) -> JoinResult {
        match payload.get("refuse") {
            Some(_) => Err(Payload::empty()),
            None => Ok(Payload::empty()),
        }
    }

    fn intercept(&self) -> &[&str] {
        &["out"]
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "echo" => Handled::reply_ok(payload),
            "push" => {
                let _ = socket.push("pushed", payload);
                Handled::NoReply
            }
            "broadcast" => {
                let _ = socket.broadcast("out", payload.clone());
                let _ = socket.broadcast("plain", payload);
                Handled::ok()
            }
            "track" => {
                let _ = socket.track("key", serde_json::json!({}));
                Handled::ok()
            }
            "stop" => Handled::stop(StopReason::Normal),
            "crash" => Handled::stop(StopReason::Error("asked to".into())),
            _ => Handled::NoReply,
        }
    }

    fn handle_out(&mut self, event: &str, payload: &Payload, socket: &mut Socket) -> Flow {
        let _ = socket.push(event, payload.clone());
        Flow::Continue
    }

    fn handle_info(&mut self, _: Info, _: &mut Socket) -> Flow {
        Flow::Continue
    }
}

/// The endpoint, started by the first input. It runs for the whole fuzzing session and
/// stays reachable from this static: an endpoint forgotten with `mem::forget` would leave
/// its allocations unreachable, and LeakSanitizer would report them after the first input.
static ENDPOINT: OnceLock<Endpoint> = OnceLock::new();

fn server() -> SocketAddr {
    let endpoint = ENDPOINT.get_or_init(|| {
        Endpoint::builder()
            .bind("127.0.0.1:0")
            .reactors(1)
            .socket(
                "/socket",
                UserSocket::new()
                    .check_origin(CheckOrigin::Off)
                    .log_connect(None)
                    .max_frame_size(64 * 1024)
                    .channel("room:*", |_| Room),
            )
            .start()
            .expect("the endpoint starts")
    });
    endpoint.local_addr()
}

/// A masked client frame (the mask is fixed; the server must unmask any).
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x37, 0xfa, 0x21, 0x3d];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let bytes = if mode % 2 == 0 {
        rest.to_vec()
    } else {
        let mut bytes = UPGRADE.to_vec();
        for message in rest.split(|&b| b == b'\n') {
            match message.split_first() {
                Some((0, binary)) => bytes.extend(frame(0x2, binary)),
                _ => bytes.extend(frame(0x1, message)),
            }
        }
        bytes
    };
    let Ok(mut stream) = TcpStream::connect(server()) else { return };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.write_all(&bytes);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Whatever the input, the server must answer and close on its own once the
    // client has finished sending.
    let mut sink = Vec::new();
    if let Err(err) = stream.read_to_end(&mut sink) {
        let hung = matches!(err.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut);
        assert!(!hung, "the server kept the connection open after the client finished");
    }
});
