//! Raw HTTP, for requests the client will not make: an upgrade request with any
//! headers, the exchange that reads the response head and body, and base64 as the JS
//! client writes it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// An HTTP response head and body.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// A header's value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A valid WebSocket upgrade request for `target` (path and query), with extra headers.
pub fn upgrade_request(target: &str, headers: &[(&str, &str)]) -> String {
    let mut request = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request
}

/// Sends `request` as is and reads the response head (and body, by content-length).
/// Leaves the stream open; a 101 response is followed by WebSocket frames.
pub fn http_exchange(addr: &str, request: &str) -> (HttpResponse, TcpStream) {
    http_exchange_within(addr, request, Duration::from_secs(5))
}

/// [`http_exchange`], waiting up to `timeout` for each read.
pub fn http_exchange_within(addr: &str, request: &str, timeout: Duration) -> (HttpResponse, TcpStream) {
    let mut stream = TcpStream::connect(addr).expect("TCP connect");
    stream.set_read_timeout(Some(timeout)).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(err) => panic!("reading the response head: {err}; read so far {:?}", String::from_utf8_lossy(&head)),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        panic!("no HTTP status in {text:?}");
    });
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':').map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (HttpResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() }, stream)
}

/// Sends `request` and returns the response, after checking that the server closed the
/// connection behind it (nothing more arrives; the read ends, not times out).
pub fn http_then_closed(addr: &str, request: &str) -> HttpResponse {
    let (response, mut stream) = http_exchange(addr, request);
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "bytes after the response: {:?}", String::from_utf8_lossy(&rest)),
        // A reset is a close too: the server closed with the request's body unread.
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(err) => panic!("the connection stayed open after {response:?}: {err}"),
    }
    response
}

/// Sends `request` and returns the response (the stream is dropped).
pub fn http(addr: &str, request: &str) -> HttpResponse {
    http_exchange(addr, request).0
}

/// Standard base64 without padding, as the JS client's `btoa` with `=` removed.
pub fn btoa_unpadded(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (*b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}
