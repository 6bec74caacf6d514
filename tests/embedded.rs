//! Embedding, over real sockets: a program's own HTTP server accepts connections,
//! reads their request heads, and hands socket requests to an endpoint that has no
//! listener (`Endpoint::adopt`); the endpoint takes them over from there.

mod common;

use common::*;
use phx_channels::client::Client;
use phx_channels::{Endpoint, Error};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

/// The program's own server: on its own thread, it accepts connections, reads each
/// one's head and then at least `extra` more bytes, answers `GET /` itself and hands
/// every other request to `endpoint` with all it read.
fn host(endpoint: Endpoint, extra: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut read = Vec::new();
            let mut chunk = [0u8; 4096];
            let has_all = |read: &[u8]| {
                read.windows(4).position(|w| w == b"\r\n\r\n").is_some_and(|end| read.len() >= end + 4 + extra)
            };
            while !has_all(&read) {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => read.extend_from_slice(&chunk[..n]),
                }
            }
            if read.starts_with(b"GET / ") {
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\nconnection: close\r\n\r\nhome");
            } else if let Err(err) = endpoint.adopt(stream, &read) {
                log::warn!("adopt failed: {err}");
            }
        }
    });
    addr
}

/// An endpoint without a listener, serving the standard test socket.
fn embedded() -> Server {
    server().endpoint(|e| e.no_listener()).start()
}

#[test]
fn channels_work_through_a_connection_the_host_server_accepted() {
    let server = embedded();
    assert_eq!(server.endpoint.local_addr().port(), 0, "no listener");
    let addr = host(server.endpoint.clone(), 0);

    // The host's own page, on the same port.
    assert_eq!(http(&addr, "GET / HTTP/1.1\r\nHost: x\r\n\r\n").body, "home");

    let mut ada = Client::builder(&addr).connect().expect("an adopted connection upgrades");
    let mut bob = Client::builder(&addr).connect().unwrap();
    for client in [&mut ada, &mut bob] {
        assert_eq!(client.join("room:lobby", json!({})).unwrap().status, "ok");
    }
    let reply = ada.push("room:lobby", "echo", json!({"body": "hi"})).unwrap();
    assert_eq!(json_of(&reply.response), json!({"body": "hi"}));
    server.endpoint.broadcast("room:lobby", "news", json!({"n": 1})).unwrap();
    for client in [&mut ada, &mut bob] {
        assert_eq!(json_of(&client.recv_event("room:lobby", "news").unwrap().payload), json!({"n": 1}));
    }
    assert_eq!(server.endpoint.stats().connections, 2);
}

#[test]
fn bytes_read_past_the_head_are_not_lost() {
    let server = embedded();
    // The host reads the request and the client's first frame in one go.
    let join = json!(["1", "1", "room:pipelined", "phx_join", {}]).to_string();
    let frame_len = 2 + 4 + join.len();
    let addr = host(server.endpoint.clone(), frame_len);
    let mut raw = TcpStream::connect(&addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut bytes = upgrade_request("/socket/websocket?vsn=2.0.0", &[]).into_bytes();
    let mask = [1u8, 2, 3, 4];
    bytes.extend_from_slice(&[0x81, 0x80 | join.len() as u8]);
    bytes.extend_from_slice(&mask);
    bytes.extend(join.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    raw.write_all(&bytes).unwrap();
    let mut ws = RawWs { stream: raw };
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        ws.stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "), "{}", String::from_utf8_lossy(&head));
    let (_, reply) = ws.read_frame().unwrap();
    let reply: serde_json::Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply, json!(["1", "1", "room:pipelined", "phx_reply", {"status": "ok", "response": {}}]));
}

#[test]
fn a_handed_over_request_gets_the_answer_the_endpoint_would_give() {
    let server = server().endpoint(|e| e.no_listener().max_header_bytes(1024)).start();
    let addr = host(server.endpoint.clone(), 0);
    assert_eq!(http(&addr, "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n").status, 404);
    let refused = upgrade_request("/socket/websocket?vsn=2.0.0&refuse=403", &[]);
    assert_eq!(http(&addr, &refused).status, 403);
    let huge = upgrade_request("/socket/websocket", &[("x-big", &"a".repeat(2000))]);
    assert_eq!(http(&addr, &huge).status, 431);
}

#[test]
fn a_listening_endpoint_adopts_too_and_a_stopped_one_refuses() {
    let server = start();
    let addr = host(server.endpoint.clone(), 0);
    let mut client = Client::builder(&addr).connect().unwrap();
    assert_eq!(client.heartbeat().unwrap().status, "ok");
    // Its own listener still serves.
    let mut direct = server.client();
    assert_eq!(direct.heartbeat().unwrap().status, "ok");

    server.endpoint.shutdown();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    assert!(matches!(server.endpoint.adopt(stream, b"GET / HTTP/1.1\r\n\r\n"), Err(Error::Shutdown)));
}
