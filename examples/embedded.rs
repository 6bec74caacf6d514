//! Channels on the port of a program's own HTTP server. The program accepts every
//! connection and reads its request head (here with `httparse`, on a thread per
//! connection, as small blocking servers do); it answers its own pages, and hands
//! requests for `/socket/...` to an endpoint that has no listener of its own, with
//! the bytes it has read: the endpoint takes the connection over from there.
//!
//! ```text
//! cargo run --example embedded                  # then open http://127.0.0.1:4000/
//! cargo run --example embedded -- --port 4001
//! ```
//!
//! Servers that keep the socket to themselves cannot hand it over: `tiny_http` and
//! `rouille`, for one, write their own `101` and give only a boxed stream, which no
//! reactor can poll. A server that can give the accepted `TcpStream` back (as here)
//! and say which bytes it read can.

use phx_channels::{Channel, CheckOrigin, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};

/// The largest request head this server reads.
const MAX_HEAD: usize = 16 * 1024;

/// The page the program serves itself: it talks to the endpoint on the same port, with
/// the chat example's small client.
const PAGE: &str = r#"<!doctype html>
<title>phx-channels, embedded</title>
<p id="status">connecting...</p>
<script type="module">
  import { Socket } from "/phoenix.js"
  const socket = new Socket("/socket")
  socket.connect()
  const channel = socket.channel("echo:lobby", {})
  channel.join().receive("ok", () => {
    channel.push("echo", {hello: "from the page"})
      .receive("ok", reply => { document.getElementById("status").textContent = JSON.stringify(reply) })
  })
</script>
"#;

/// `echo:*`: replies with what it was sent.
struct Echo;

impl Channel for Echo {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, payload: Payload, _socket: &mut Socket) -> Handled {
        match event {
            "echo" => Handled::reply_ok(payload),
            other => Handled::unhandled(other),
        }
    }
}

/// What one connection asked for: the bytes read so far (the head, maybe more) and
/// the request's path.
struct Head {
    bytes: Vec<u8>,
    path: String,
}

/// Reads until the request head is whole.
fn read_head(stream: &mut TcpStream) -> io::Result<Head> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        bytes.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&bytes) {
            Ok(httparse::Status::Complete(_)) => {
                let path = request.path.unwrap_or("/").to_owned();
                return Ok(Head { bytes, path });
            }
            Ok(httparse::Status::Partial) if bytes.len() < MAX_HEAD => {}
            Ok(httparse::Status::Partial) => return Err(io::Error::other("request head too large")),
            Err(err) => return Err(io::Error::new(io::ErrorKind::InvalidData, err)),
        }
    }
}

/// Serves one connection: the endpoint's, or the program's own page (one request,
/// then close).
fn serve(mut stream: TcpStream, endpoint: &Endpoint) -> Result<(), Box<dyn std::error::Error>> {
    let head = read_head(&mut stream)?;
    if head.path.starts_with("/socket/") {
        endpoint.adopt(stream, &head.bytes)?;
        return Ok(());
    }
    let (status, content_type, body) = match head.path.as_str() {
        "/" => ("200 OK", "text/html; charset=utf-8", PAGE.as_bytes()),
        "/phoenix.js" => ("200 OK", "text/javascript", &include_bytes!("chat/phoenix.js")[..]),
        _ => ("404 Not Found", "text/plain", &b"not found"[..]),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(response.as_bytes())?;
    stream.write_all(body)?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let port: u16 = match std::env::args().skip(1).collect::<Vec<_>>().as_slice() {
        [] => 4000,
        [flag, port] if flag == "--port" => port.parse()?,
        _ => return Err("usage: embedded [--port PORT]".into()),
    };
    let endpoint = Endpoint::builder()
        .no_listener()
        // The page comes from this same host and port, whatever name it was opened by.
        .socket("/socket", UserSocket::new().check_origin(CheckOrigin::SameAsRequest).channel("echo:*", |_| Echo))
        .start()?;
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!("embedded example: http://{}/ (pages and channels on one port)", listener.local_addr()?);
    for stream in listener.incoming() {
        let stream = stream?;
        let endpoint = endpoint.clone();
        std::thread::spawn(move || {
            if let Err(err) = serve(stream, &endpoint) {
                log::warn!("a request failed: {err}");
            }
        });
    }
    Ok(())
}
