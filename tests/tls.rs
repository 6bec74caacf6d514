//! TLS straight from the endpoint (feature `tls`), over real sockets: the crate's
//! client over `wss://` trusting a certificate made here, plain HTTP on the TLS port,
//! untrusted clients, handshakes that stall, dribble or grow too large, closes, and
//! connections handed over by the program (plain).
#![cfg(feature = "tls")]

mod common;

use common::*;
use phx_channels::client::{Client, TlsRoots};
use phx_channels::{CheckOrigin, TlsConfig};
use serde_json::json;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A self-signed certificate for `localhost` and `127.0.0.1`: the server's
/// configuration, and the roots a client needs to trust it.
fn self_signed() -> (TlsConfig, TlsRoots) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert_pem = made.cert.pem();
    let config = TlsConfig::from_pem(cert_pem.as_bytes(), made.signing_key.serialize_pem().as_bytes()).unwrap();
    (config, TlsRoots::from_pem(cert_pem.as_bytes()).unwrap())
}

/// A TLS test server, its settings changed by `tweak`, and the roots that trust it.
fn tls_server(
    tweak: impl FnOnce(phx_channels::EndpointBuilder) -> phx_channels::EndpointBuilder + 'static,
) -> (Server, TlsRoots) {
    let (config, roots) = self_signed();
    (server().endpoint(move |e| tweak(e.tls(config))).start(), roots)
}

/// Reads until the server closes the connection (or `within` passes); returns what
/// it sent and how long it took.
fn read_to_close(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Duration) {
    let start = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return (got, start.elapsed()),
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

/// A TLS record header for a handshake message of `len` bytes, and a `ClientHello`
/// header that promises `body` bytes: the start of a handshake that never ends.
fn client_hello_start(body: usize) -> Vec<u8> {
    let record_len = (body + 4).min(16_384) as u16;
    let mut bytes = vec![22, 3, 1];
    bytes.extend_from_slice(&record_len.to_be_bytes());
    bytes.extend_from_slice(&[1, (body >> 16) as u8, (body >> 8) as u8, body as u8]);
    bytes.extend_from_slice(&[3, 3]);
    bytes
}

/// A client over `wss://` that has joined `topic`.
fn joined_over_tls(server: &Server, roots: &TlsRoots, topic: &str) -> Client {
    let mut client = server.builder().tls(roots.clone()).connect().expect("a wss client connects");
    let reply = client.join(topic, json!({})).unwrap();
    assert_eq!(reply.status, "ok", "{reply:?}");
    client
}

#[test]
fn the_crate_client_joins_pushes_and_gets_broadcasts_over_wss() {
    let (server, roots) = tls_server(|e| e);
    let mut ada = joined_over_tls(&server, &roots, "room:lobby");
    let mut bob = joined_over_tls(&server, &roots, "room:lobby");

    let reply = ada.push("room:lobby", "echo", json!({"body": "hello"})).unwrap();
    assert_eq!((reply.status.as_str(), json_of(&reply.response)), ("ok", json!({"body": "hello"})));

    server.endpoint.broadcast("room:lobby", "news", json!({"n": 1})).unwrap();
    for client in [&mut ada, &mut bob] {
        assert_eq!(json_of(&client.recv_event("room:lobby", "news").unwrap().payload), json!({"n": 1}));
    }

    // Larger than a TLS record and than rustls' buffers, in both directions: many
    // records per frame, and writes that the socket takes in parts.
    let big = "x".repeat(300_000);
    let reply = bob.push("room:lobby", "echo", json!({"body": big})).unwrap();
    assert_eq!(json_of(&reply.response)["body"].as_str().map(str::len), Some(big.len()));

    // Many replies queued back to back, in order.
    let refs: Vec<String> = (0..200).map(|i| ada.push_async("room:lobby", "echo", json!({"i": i})).unwrap()).collect();
    for (i, msg_ref) in refs.iter().enumerate() {
        assert_eq!(json_of(&ada.wait_reply(msg_ref).unwrap().response), json!({"i": i}));
    }
    assert_eq!(ada.heartbeat().unwrap().status, "ok");

    let stats = server.endpoint.stats();
    assert_eq!((stats.connections, stats.tls_handshake_failures), (2, 0));
    ada.close().unwrap();
    bob.close().unwrap();
}

#[test]
fn requests_over_tls_are_https_for_the_origin_check() {
    let (config, roots) = self_signed();
    let server = server().socket(|s| s.check_origin(CheckOrigin::SameAsRequest)).endpoint(|e| e.tls(config)).start();
    let port = server.endpoint.local_addr().port();
    let same = format!("https://127.0.0.1:{port}");
    let mut client = server.builder().tls(roots.clone()).header("origin", &same).connect().unwrap();
    assert_eq!(client.heartbeat().unwrap().status, "ok");
    let plain_origin = format!("http://127.0.0.1:{port}");
    match server.builder().tls(roots).header("origin", &plain_origin).connect() {
        Err(phx_channels::client::ClientError::Refused { status: 403, .. }) => {}
        other => panic!("an http origin on a TLS request must be refused: {:?}", other.map(|_| ())),
    }
}

#[test]
fn plain_http_on_the_tls_port_gets_a_400_and_the_server_keeps_serving() {
    let (server, roots) = tls_server(|e| e);
    let mut raw = TcpStream::connect(&server.addr).unwrap();
    raw.write_all(upgrade_request("/socket/websocket?vsn=2.0.0", &[]).as_bytes()).unwrap();
    let (answer, _) = read_to_close(&mut raw, Duration::from_secs(5));
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("TLS only"), "{answer}");

    // The crate's client without TLS is refused the same way.
    assert!(server.builder().connect().is_err());

    let mut client = joined_over_tls(&server, &roots, "room:after");
    assert_eq!(client.push("room:after", "echo", json!({"ok": true})).unwrap().status, "ok");
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.stats().tls_handshake_failures == 2));
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_counted_and_closed() {
    let (server, _roots) = tls_server(|e| e);
    let (_, strangers) = self_signed();
    let result = server.builder().tls(strangers).connect();
    assert!(result.is_err(), "a client with other roots must not connect");
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.stats().tls_handshake_failures == 1));
}

#[test]
fn a_stalled_tls_handshake_is_closed_after_the_handshake_timeout() {
    let (server, roots) = tls_server(|e| e.handshake_timeout(Duration::from_millis(300)));
    // One connection sends nothing at all, another the start of a ClientHello.
    let start = Instant::now();
    let mut silent = TcpStream::connect(&server.addr).unwrap();
    let mut partial = TcpStream::connect(&server.addr).unwrap();
    partial.write_all(&client_hello_start(512)).unwrap();
    for stream in [&mut silent, &mut partial] {
        let (answer, _) = read_to_close(stream, Duration::from_secs(5));
        let took = start.elapsed();
        // At most a TLS alert (close_notify), never plain HTTP.
        assert!(answer.is_empty() || answer[0] == 21, "{answer:?}");
        assert!(took >= Duration::from_millis(250), "closed after {took:?}, before the timeout");
        assert!(took < Duration::from_secs(3), "still open after {took:?}");
    }
    let mut client = joined_over_tls(&server, &roots, "room:still");
    assert_eq!(client.heartbeat().unwrap().status, "ok");
}

#[test]
fn a_slow_handshake_does_not_hold_back_other_connections() {
    // One reactor, so that the slow handshake and the others share it.
    let (server, roots) = tls_server(|e| e.reactors(1));
    let mut slow = TcpStream::connect(&server.addr).unwrap();
    let start = client_hello_start(512);
    // A byte at a time, while other clients connect, join and talk.
    let mut clients = Vec::new();
    for (i, byte) in start.iter().enumerate() {
        slow.write_all(&[*byte]).unwrap();
        let topic = format!("room:{i}");
        let began = Instant::now();
        let mut client = joined_over_tls(&server, &roots, &topic);
        assert_eq!(client.push(&topic, "echo", json!({"i": i})).unwrap().status, "ok");
        assert!(began.elapsed() < Duration::from_secs(2), "a connection took {:?}", began.elapsed());
        clients.push(client);
    }
    // The slow one is still waiting for its handshake, not refused.
    slow.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut byte = [0u8; 1];
    assert!(matches!(slow.read(&mut byte), Err(ref err) if err.kind() == std::io::ErrorKind::WouldBlock));
    assert_eq!(server.endpoint.stats().connections, clients.len() as u64);
}

#[test]
fn a_handshake_larger_than_the_head_limit_is_refused() {
    let (server, roots) = tls_server(|e| e.max_header_bytes(4096));
    let mut big = TcpStream::connect(&server.addr).unwrap();
    let mut bytes = client_hello_start(60_000);
    bytes.resize(bytes.len() + 12_000, 0);
    // The server may close before it has read everything.
    let _ = big.write_all(&bytes);
    let (answer, took) = read_to_close(&mut big, Duration::from_secs(5));
    assert!(took < Duration::from_secs(3), "still open after {took:?}");
    assert!(!answer.starts_with(b"HTTP"), "a TLS client gets no plain HTTP answer");
    assert!(wait_until(Duration::from_secs(5), || server.endpoint.stats().tls_handshake_failures == 1));
    // A real handshake is far below the limit.
    let mut client = joined_over_tls(&server, &roots, "room:small");
    assert_eq!(client.heartbeat().unwrap().status, "ok");
}

#[test]
fn certificate_and_key_errors_are_typed() {
    use phx_channels::TlsError;
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let (cert, key) = (made.cert.pem(), made.signing_key.serialize_pem());
    assert!(matches!(TlsConfig::from_pem(b"", key.as_bytes()), Err(TlsError::NoCertificate)));
    assert!(matches!(TlsConfig::from_pem(cert.as_bytes(), b""), Err(TlsError::NoPrivateKey)));
    let mismatched = TlsConfig::from_pem(cert.as_bytes(), other.signing_key.serialize_pem().as_bytes());
    assert!(matches!(mismatched, Err(TlsError::Rejected(_))), "{mismatched:?}");
    let missing = TlsConfig::from_pem_files("/nonexistent/cert.pem", "/nonexistent/key.pem").unwrap_err();
    assert!(matches!(missing, TlsError::Read { .. }));
    assert!(missing.to_string().contains("/nonexistent/cert.pem"), "{missing}");
    // And a good pair from files.
    let dir = std::env::temp_dir().join(format!("phx-tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("key.pem"), &key).unwrap();
    assert!(TlsConfig::from_pem_files(dir.join("cert.pem"), dir.join("key.pem")).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn server_side_closes_reach_a_tls_client_whole() {
    let (server, roots) = tls_server(|e| e);
    let mut client = server.builder().tls(roots).param("user_id", "ada").connect().unwrap();
    assert_eq!(client.join("room:closing", json!({})).unwrap().status, "ok");
    // Queued output, then the close frame, then close_notify: all of it arrives.
    for i in 0..50 {
        client.push_async("room:closing", "echo", json!({"i": i})).unwrap();
    }
    server.endpoint.broadcast("user_socket:ada", "disconnect", json!({})).unwrap();
    let close = client.wait_close().unwrap();
    assert_eq!(close.map(|(code, _)| code), Some(1001));
}

#[test]
fn connections_handed_over_to_a_tls_endpoint_are_plain() {
    let (server, roots) = tls_server(|e| e);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let endpoint = server.endpoint.clone();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        endpoint.adopt(stream, &head).unwrap();
    });
    let mut plain = Client::builder(&addr).connect().expect("a plain client through the program's own port");
    assert_eq!(plain.heartbeat().unwrap().status, "ok");
    // The endpoint's own port still speaks TLS only.
    let mut secure = joined_over_tls(&server, &roots, "room:both");
    assert_eq!(secure.heartbeat().unwrap().status, "ok");
}

#[test]
fn a_wss_url_connects_over_tls_and_a_ws_url_with_roots_is_refused() {
    let (server, roots) = tls_server(|e| e);
    let port = server.endpoint.local_addr().port();
    let mut client = Client::builder(format!("wss://localhost:{port}/socket")).tls(roots.clone()).connect().unwrap();
    assert_eq!(client.join("room:wss", json!({})).unwrap().status, "ok");
    match Client::builder(format!("ws://localhost:{port}/socket")).tls(roots).connect() {
        Err(phx_channels::client::ClientError::InvalidUrl(phx_channels::client::UrlError::PlainWithTls)) => {}
        other => panic!("ws:// with TLS roots must be refused: {:?}", other.map(|_| ())),
    }
}
