//! The HTTP side of a connection: paths, methods, vsn, connect params and refusals,
//! origin checks, subprotocols and the auth token, connect_info (PROTOCOL.md 2.1–2.6).

mod common;

use common::*;
use phx_channels::client::ClientError;
use phx_channels::{CheckOrigin, ConnectInfoKey, Origin};
use serde_json::{Value, json};
use std::sync::Arc;

fn refused_status(result: Result<phx_channels::client::Client, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Refused { status, body }) => (status, body),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected an HTTP refusal, the connection was accepted"),
    }
}

fn assigns(client: &mut phx_channels::client::Client) -> Value {
    let reply = client.join("room:assigns", json!({"mode": "assigns"})).unwrap();
    assert_eq!(reply.status, "ok", "{reply:?}");
    json_of(&reply.response)
}

// --- P1 ---------------------------------------------------------------------------------

#[test]
fn websocket_endpoint_is_the_mount_path_plus_websocket() {
    // P1
    let server = start();
    let response = http(&server.addr, &upgrade_request("/socket/websocket?vsn=2.0.0", &[]));
    assert_eq!(response.status, 101);
    for path in ["/socket?vsn=2.0.0", "/socket/longpoll?vsn=2.0.0", "/socket/websocket/extra", "/nowhere"] {
        let response = http(&server.addr, &upgrade_request(path, &[]));
        assert_eq!(response.status, 404, "{path}");
    }
}

#[test]
fn path_params_of_the_mount_become_connect_params() {
    // P1
    let server = start();
    let mut client = server.builder().path("/ws/77").param("x", "y").connect().unwrap();
    let assigns = assigns(&mut client);
    assert_eq!(assigns["params"], json!({"user_id": "77", "x": "y", "vsn": "2.0.0"}));
}

// --- P2, P3 -----------------------------------------------------------------------------

#[test]
fn methods_other_than_get_get_400_with_an_empty_body() {
    // P2
    let server = start();
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let request = upgrade_request("/socket/websocket?vsn=2.0.0", &[]).replacen("GET", method, 1);
        let response = http(&server.addr, &request);
        assert_eq!(response.status, 400, "{method}");
        assert_eq!(response.body, "", "{method}");
    }
}

#[test]
fn an_upgrade_with_a_body_or_ambiguous_framing_gets_400_and_a_close() {
    // RFC 9112 6.3: what follows an upgrade's head is frames; a proxy that reads a body
    // there, or the other Content-Length, would see another request.
    let server = start();
    let target = "/socket/websocket?vsn=2.0.0";
    /// What is wrong, the headers, the body.
    type Case = (&'static str, &'static [(&'static str, &'static str)], &'static str);
    let cases: [Case; 6] = [
        ("a body", &[("Content-Length", "5")], "hello"),
        ("a chunked body", &[("Transfer-Encoding", "chunked")], "0\r\n\r\n"),
        ("two lengths", &[("Content-Length", "0"), ("Content-Length", "5")], "hello"),
        ("two equal lengths", &[("Content-Length", "0"), ("Content-Length", "0")], ""),
        ("a list of lengths", &[("Content-Length", "0, 5")], "hello"),
        ("both framings", &[("Transfer-Encoding", "chunked"), ("Content-Length", "5")], "hello"),
    ];
    for (what, headers, body) in cases {
        let request = upgrade_request(target, headers) + body;
        let response = http_then_closed(&server.addr, &request);
        assert_eq!(response.status, 400, "{what}");
    }
    assert_eq!(server.endpoint.stats().connections_total, 0, "no connection opened");
    // A Content-Length of zero frames no body: the upgrade goes through.
    let request = upgrade_request(target, &[("Content-Length", "0")]);
    assert_eq!(http(&server.addr, &request).status, 101);
}

#[test]
fn a_get_that_is_not_a_websocket_upgrade_gets_400() {
    // P3
    let server = start();
    let plain = "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    assert_eq!(http(&server.addr, plain).status, 400);
    let full = upgrade_request("/socket/websocket?vsn=2.0.0", &[]);
    for (what, broken) in [
        ("no Upgrade header", full.replace("Upgrade: websocket\r\n", "")),
        ("no Sec-WebSocket-Key", full.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")),
        ("wrong version", full.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8")),
        ("Connection without upgrade", full.replace("Connection: Upgrade", "Connection: keep-alive")),
    ] {
        assert_eq!(http(&server.addr, &broken).status, 400, "{what}");
    }
}

#[test]
fn paths_that_are_not_sockets_get_404() {
    // P1 (only the mount's /websocket path is a socket)
    let server = start();
    let response = http(&server.addr, "GET /index.html HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    assert_eq!(response.status, 404);
}

// --- P4, P5, P6 -------------------------------------------------------------------------

#[test]
fn a_missing_vsn_means_v1() {
    // P4
    let server = start();
    let mut ws = RawWs::connect(&server.addr, "/socket/websocket");
    ws.send_json(&json!({"topic": "room:1", "event": "phx_join", "payload": {}, "ref": "1"}));
    let reply = ws.read_json();
    assert_eq!(
        reply,
        json!({"topic": "room:1", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "1"})
    );
}

#[test]
fn vsn_1_0_x_selects_v1_and_2_0_x_selects_v2() {
    // P5
    let server = start();
    for vsn in ["1.0.0", "1.0.7"] {
        let mut ws = RawWs::connect(&server.addr, &format!("/socket/websocket?vsn={vsn}"));
        ws.send_json(&json!({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "h"}));
        let reply = ws.read_json();
        assert!(reply.is_object(), "{vsn}: V1 replies are objects: {reply}");
        assert!(reply.get("join_ref").is_none(), "{vsn}: V1 output has no join_ref: {reply}");
    }
    for vsn in ["2.0.0", "2.0.3"] {
        let mut ws = RawWs::connect(&server.addr, &format!("/socket/websocket?vsn={vsn}"));
        ws.send_json(&json!([null, "h", "phoenix", "heartbeat", {}]));
        assert_eq!(ws.read_json(), json!([null, "h", "phoenix", "phx_reply", {"response": {}, "status": "ok"}]));
    }
}

#[test]
fn an_invalid_or_unmatched_vsn_gets_403_and_connect_does_not_run() {
    // P6
    let server = start();
    for vsn in ["2.0", "", "abc", "123.1.1", "2.1.0", "1.1.0"] {
        let (status, body) = refused_status(server.builder().vsn(Some(vsn)).connect());
        assert_eq!((status, body.as_str()), (403, ""), "vsn {vsn:?}");
    }
    // A vsn that is not a string.
    let (status, body) = refused_status(server.builder().vsn(None).param("vsn[]", "1").connect());
    assert_eq!((status, body.as_str()), (403, ""), "vsn[]=1");
    let (status, _) = refused_status(server.builder().vsn(None).param("vsn[a]", "2.0.0").connect());
    assert_eq!(status, 403, "vsn[a]=2.0.0");
    assert!(server.events().connects().is_empty(), "connect ran: {:?}", server.events().connects());
}

// --- P7, P8, P9 -------------------------------------------------------------------------

#[test]
fn connect_params_are_the_query_params_nested_keys_and_vsn_included() {
    // P7
    let server = start();
    let mut client = server
        .builder()
        .param("token", "abc")
        .param("a[b]", "1")
        .param("a[c][d]", "2")
        .param("list[]", "x")
        .param("list[]", "y")
        .param("name", "Jürgen M")
        .connect()
        .unwrap();
    let expected = json!({"token": "abc", "a": {"b": "1", "c": {"d": "2"}}, "list": ["x", "y"], "name": "Jürgen M", "vsn": "2.0.0"});
    assert_eq!(assigns(&mut client)["params"], expected);
    assert_eq!(server.events().connects()[0]["params"], expected);
}

#[test]
fn connect_refusing_gets_403_with_an_empty_body() {
    // P8
    let server = start();
    let (status, body) = refused_status(server.builder().param("refuse", "403").connect());
    assert_eq!((status, body.as_str()), (403, ""));
    assert_eq!(server.events().connects().len(), 1);
}

#[test]
fn connect_refusing_with_a_custom_response_gets_it() {
    // P9
    let server = start();
    let (status, body) = refused_status(server.builder().param("refuse", "429").connect());
    assert_eq!((status, body.as_str()), (429, "Too many requests"));
}

#[test]
fn a_panicking_connect_gets_403_and_the_server_carries_on() {
    // P8 (a crash in connect refuses the connection)
    let server = start();
    let (status, _) = refused_status(server.builder().param("refuse", "panic").connect());
    assert_eq!(status, 403);
    let mut client = server.client();
    assert_alive(&mut client);
}

// --- P11–P17 ----------------------------------------------------------------------------

/// A server with one mount per origin mode; the endpoint's host is `example.com`.
fn origin_server() -> Server {
    server()
        .endpoint(|e| e.host("example.com"))
        .mount("/off", |s| s.check_origin(CheckOrigin::Off))
        .mount("/list", |s| {
            s.check_origin(CheckOrigin::Allow(vec![
                "https://example.com".into(),
                "//another.com:888".into(),
                "//*.other.com".into(),
            ]))
        })
        .mount("/conn", |s| s.check_origin(CheckOrigin::SameAsRequest))
        .mount("/custom", |s| s.check_origin(CheckOrigin::Custom(Arc::new(|o: &Origin| o.host.is_none()))))
        .start()
}

/// The HTTP status of an upgrade on `mount` with `origin` (none if `None`).
fn status_with_origin(server: &Server, mount: &str, origin: Option<&str>) -> u16 {
    let target = format!("{mount}/websocket?vsn=2.0.0");
    let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
    http(&server.addr, &upgrade_request(&target, &headers)).status
}

#[test]
fn no_origin_header_is_always_allowed() {
    // P11
    let server = origin_server();
    for mount in ["/socket", "/off", "/list", "/conn", "/custom"] {
        assert_eq!(status_with_origin(&server, mount, None), 101, "{mount}");
    }
}

#[test]
fn check_origin_off_allows_any_origin() {
    // P12
    let server = origin_server();
    for origin in ["http://evil.com", "https://example.com", "null", "file://"] {
        assert_eq!(status_with_origin(&server, "/off", Some(origin)), 101, "{origin}");
    }
}

#[test]
fn the_default_check_compares_only_the_host_with_the_endpoint_host() {
    // P13
    let server = origin_server();
    for origin in ["https://example.com", "http://example.com", "https://example.com:8443", "ws://example.com:1"] {
        assert_eq!(status_with_origin(&server, "/socket", Some(origin)), 101, "{origin}");
    }
    for origin in ["http://sub.example.com", "http://evil.com", "http://example.com.evil.com"] {
        assert_eq!(status_with_origin(&server, "/socket", Some(origin)), 403, "{origin}");
    }
}

#[test]
fn an_origin_list_compares_scheme_host_and_port_with_wildcards() {
    // P14
    let server = origin_server();
    for origin in [
        "https://example.com",
        "https://example.com:443",
        "http://another.com:888",
        "https://another.com:888",
        "http://other.com",
        "https://a.b.other.com:1",
    ] {
        assert_eq!(status_with_origin(&server, "/list", Some(origin)), 101, "{origin}");
    }
    for origin in [
        "http://example.com",
        "https://example.com:8443",
        "http://another.com",
        "http://notother.com",
        "http://evil.com",
    ] {
        assert_eq!(status_with_origin(&server, "/list", Some(origin)), 403, "{origin}");
    }
}

#[test]
fn check_origin_conn_requires_the_requests_own_scheme_host_and_port() {
    // P15: the request's Host header is 127.0.0.1 (no port: the local port is used).
    let server = origin_server();
    let port = server.endpoint.local_addr().port();
    let same = format!("http://127.0.0.1:{port}");
    assert_eq!(status_with_origin(&server, "/conn", Some(&same)), 101);
    for origin in
        [format!("https://127.0.0.1:{port}"), format!("http://127.0.0.1:{}", port + 1), "http://localhost".into()]
    {
        assert_eq!(status_with_origin(&server, "/conn", Some(&origin)), 403, "{origin}");
    }
    // Through the client, whose Host header carries the port.
    let ok = server.builder().path("/conn").header("Origin", &same).connect();
    assert!(ok.is_ok(), "{:?}", ok.err());
}

#[test]
fn an_origin_without_a_host_is_rejected_unless_off_or_custom() {
    // P16
    let server = origin_server();
    for mount in ["/socket", "/list", "/conn"] {
        assert_eq!(status_with_origin(&server, mount, Some("null")), 403, "{mount}");
    }
    assert_eq!(status_with_origin(&server, "/off", Some("null")), 101);
    assert_eq!(status_with_origin(&server, "/custom", Some("null")), 101);
    assert_eq!(status_with_origin(&server, "/custom", Some("https://example.com")), 403);
}

#[test]
fn a_rejected_origin_gets_403_with_an_empty_body_before_connect_runs() {
    // P17
    let server = origin_server();
    let (status, body) = refused_status(server.builder().header("Origin", "http://evil.com").connect());
    assert_eq!((status, body.as_str()), (403, ""));
    assert!(server.events().connects().is_empty(), "connect ran: {:?}", server.events().connects());
    let ok = server.builder().header("Origin", "https://example.com").connect();
    assert!(ok.is_ok(), "{:?}", ok.err());
    assert_eq!(server.events().connects().len(), 1);
}

// --- The default check on a developer's machine ---------------------------------------

/// The HTTP status of an upgrade on `/socket` sent to `addr` with `Host: host` and `origin`.
fn status_with_host_and_origin(addr: &str, host: &str, origin: &str) -> u16 {
    let request = upgrade_request("/socket/websocket?vsn=2.0.0", &[("Origin", origin)]).replacen(
        "Host: 127.0.0.1\r\n",
        &format!("Host: {host}\r\n"),
        1,
    );
    http(addr, &request).status
}

#[test]
fn the_default_host_on_a_loopback_listener_lets_loopback_origins_through() {
    // The README's first server: bound to 127.0.0.1, no host set. A page on another
    // loopback port or name reaches it; any other origin still gets 403.
    let server = start();
    let port = server.endpoint.local_addr().port();
    let addr = &server.addr;
    for (host, origin) in [
        (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}")),
        (format!("127.0.0.1:{port}"), "http://127.0.0.1:8080".to_owned()),
        (format!("localhost:{port}"), "http://127.0.0.1:8080".to_owned()),
        (format!("localhost:{port}"), "http://[::1]:3000".to_owned()),
        (format!("127.0.0.1:{port}"), "http://app.localhost:3000".to_owned()),
        (format!("127.0.0.1:{port}"), "http://localhost:3000".to_owned()),
    ] {
        assert_eq!(status_with_host_and_origin(addr, &host, &origin), 101, "Host {host}, Origin {origin}");
    }
    for origin in ["http://evil.com", "http://127.0.0.1.evil.com", "http://localhost.evil.com", "null"] {
        assert_eq!(status_with_host_and_origin(addr, &format!("127.0.0.1:{port}"), origin), 403, "{origin}");
    }
}

#[test]
fn a_configured_host_keeps_the_default_check_strict() {
    let server = server().endpoint(|e| e.host("example.com")).start();
    let addr = &server.addr;
    assert_eq!(status_with_host_and_origin(addr, "example.com", "https://example.com"), 101);
    // Neither the request's own host nor loopback origins pass: only the one configured.
    assert_eq!(status_with_host_and_origin(addr, "app.example.net:4000", "http://app.example.net:4000"), 403);
    for origin in ["http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]", "http://evil.com"] {
        assert_eq!(status_with_host_and_origin(addr, "example.com", origin), 403, "{origin}");
    }
}

#[test]
fn without_a_listener_the_default_check_allows_the_request_own_host_only() {
    // Connections handed over by the program's own server: the endpoint does not know
    // where that server listens, so loopback origins get no special treatment; a page
    // of the host the request was sent to passes, the host being the default.
    let server = server().endpoint(|e| e.no_listener()).start();
    let endpoint = server.endpoint.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let adopt = std::thread::spawn(move || {
        for stream in listener.incoming().take(2) {
            let mut stream = stream.unwrap();
            let mut head = vec![0u8; 4096];
            let n = std::io::Read::read(&mut stream, &mut head).unwrap();
            head.truncate(n);
            endpoint.adopt(stream, &head).unwrap();
        }
    });
    assert_eq!(status_with_host_and_origin(&addr, &addr, &format!("http://{addr}")), 101);
    assert_eq!(status_with_host_and_origin(&addr, &addr, "http://127.0.0.2:8080"), 403);
    adopt.join().unwrap();
}

// --- P18–P20 ----------------------------------------------------------------------------

fn protocol_server() -> Server {
    server().mount("/protocols", |s| s.subprotocols(["b", "a"])).mount("/token", |s| s.auth_token(true)).start()
}

fn upgrade_with_protocols(server: &Server, mount: &str, protocols: Option<&str>) -> HttpResponse {
    let target = format!("{mount}/websocket?vsn=2.0.0");
    let headers: Vec<(&str, &str)> = protocols.map(|p| ("Sec-WebSocket-Protocol", p)).into_iter().collect();
    http(&server.addr, &upgrade_request(&target, &headers))
}

#[test]
fn without_subprotocols_configured_the_header_is_ignored_and_none_echoed() {
    // P18
    let server = protocol_server();
    let response = upgrade_with_protocols(&server, "/socket", Some("foo, bar"));
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-protocol"), None);
}

#[test]
fn the_first_configured_subprotocol_offered_is_echoed() {
    // P19
    let server = protocol_server();
    let response = upgrade_with_protocols(&server, "/protocols", Some("a, b"));
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-protocol"), Some("b"));
    let response = upgrade_with_protocols(&server, "/protocols", Some("x, a"));
    assert_eq!((response.status, response.header("sec-websocket-protocol")), (101, Some("a")));
}

#[test]
fn no_matching_subprotocol_gets_403_and_a_missing_header_is_accepted() {
    // P19
    let server = protocol_server();
    let response = upgrade_with_protocols(&server, "/protocols", Some("c, d"));
    assert_eq!((response.status, response.body.as_str()), (403, ""));
    let response = upgrade_with_protocols(&server, "/protocols", None);
    assert_eq!(response.status, 101);
    assert_eq!(response.header("sec-websocket-protocol"), None);
}

#[test]
fn the_auth_token_is_decoded_into_connect_info_and_phoenix_is_echoed() {
    // P20: standard alphabet, no padding (the bytes give `+` and `/`).
    let server = protocol_server();
    let token: &[u8] = b"\xfb\xff\xbfsecret";
    let encoded = btoa_unpadded(token);
    assert!(encoded.contains('+') && encoded.contains('/') && !encoded.contains('='), "{encoded}");
    let offered = format!("phoenix, base64url.bearer.phx.{encoded}");
    let response = upgrade_with_protocols(&server, "/token", Some(&offered));
    assert_eq!(response.status, 101, "{response:?}");
    assert_eq!(response.header("sec-websocket-protocol"), Some("phoenix"));
    let connect = &server.events().connects()[0];
    assert_eq!(connect["auth_token_bytes"], json!(token), "{connect}");
}

#[test]
fn the_auth_token_reaches_connect_through_the_client_too() {
    // P20
    let server = protocol_server();
    let offered = format!("phoenix, base64url.bearer.phx.{}", btoa_unpadded(b"user-token-42"));
    let client = server.builder().path("/token").header("Sec-WebSocket-Protocol", &offered).connect();
    assert!(client.is_ok(), "{:?}", client.err());
    assert_eq!(server.events().connects()[0]["auth_token"], json!("user-token-42"));
}

// --- P21 --------------------------------------------------------------------------------

#[test]
fn only_the_configured_connect_info_keys_are_provided() {
    // P21
    let server = server()
        .mount("/some", |s| {
            s.connect_info([
                ConnectInfoKey::PeerData,
                ConnectInfoKey::XHeaders,
                ConnectInfoKey::Uri,
                ConnectInfoKey::UserAgent,
            ])
        })
        .mount("/others", |s| {
            s.connect_info([ConnectInfoKey::TraceContextHeaders, ConnectInfoKey::SecWebsocketHeaders])
        })
        .start();
    let headers = [
        ("X-Request-Id", "r-1"),
        ("x-forwarded-for", "10.0.0.1"),
        ("User-Agent", "phx-test/1.0"),
        ("traceparent", "00-abc-def-01"),
        ("tracestate", "k=v"),
        ("Accept", "*/*"),
    ];

    let mut client = server.builder().param("q", "1");
    for (name, value) in headers {
        client = client.header(name, value);
    }
    let mut client = client.connect().unwrap();
    assert_eq!(assigns(&mut client)["info"], json!({}), "no keys configured on /socket");

    let mut some = server.builder().path("/some").param("q", "1");
    for (name, value) in headers {
        some = some.header(name, value);
    }
    let mut some = some.connect().unwrap();
    let info = assigns(&mut some)["info"].clone();
    let mut keys: Vec<&str> = info.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["peer_data", "uri", "user_agent", "x_headers"], "{info}");
    assert_eq!(info["x_headers"], json!({"x-request-id": "r-1", "x-forwarded-for": "10.0.0.1"}));
    assert_eq!(info["user_agent"], json!("phx-test/1.0"));
    assert_eq!(info["peer_data"]["address"], json!("127.0.0.1"));
    assert!(info["peer_data"]["port"].as_u64().is_some_and(|p| p > 0), "{info}");
    let port = server.endpoint.local_addr().port();
    assert_eq!(info["uri"]["scheme"], json!("http"));
    assert_eq!(info["uri"]["host"], json!("127.0.0.1"));
    assert_eq!(info["uri"]["port"], json!(port));
    assert_eq!(info["uri"]["path"], json!("/some/websocket"));
    assert_eq!(info["uri"]["query"], json!("q=1&vsn=2.0.0"));

    let mut others = server.builder().path("/others");
    for (name, value) in headers {
        others = others.header(name, value);
    }
    let mut others = others.connect().unwrap();
    let info = assigns(&mut others)["info"].clone();
    let mut keys: Vec<&str> = info.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["sec_websocket_headers", "trace_context_headers"], "{info}");
    assert_eq!(info["trace_context_headers"], json!({"traceparent": "00-abc-def-01", "tracestate": "k=v"}));
    let sec = info["sec_websocket_headers"].as_object().unwrap();
    assert!(sec.contains_key("sec-websocket-key") && sec.contains_key("sec-websocket-version"), "{info}");
    assert!(sec.keys().all(|k| k.starts_with("sec-websocket-")), "{info}");
}

#[test]
fn a_user_agent_key_without_the_header_is_null() {
    // P21: user_agent is nil when the header is absent.
    let server = server().mount("/ua", |s| s.connect_info([ConnectInfoKey::UserAgent])).start();
    let response = http(&server.addr, &upgrade_request("/ua/websocket?vsn=2.0.0", &[]));
    assert_eq!(response.status, 101);
    assert_eq!(server.events().connects()[0]["info"], json!({"user_agent": null}));
}

// --- D3: limits of the HTTP request ----------------------------------------------------

#[test]
fn a_client_that_sends_no_request_in_time_gets_408() {
    // D3 (handshake timeout)
    let server = server().endpoint(|e| e.handshake_timeout(std::time::Duration::from_millis(200))).start();
    let (response, _) = http_exchange(&server.addr, "GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\n");
    assert_eq!(response.status, 408);
}

#[test]
fn request_headers_over_the_limit_get_431() {
    // D3 (max header bytes)
    let server = server().endpoint(|e| e.max_header_bytes(1024)).start();
    let filler = "f".repeat(2048);
    let response = http(&server.addr, &upgrade_request("/socket/websocket?vsn=2.0.0", &[("x-filler", &filler)]));
    assert_eq!(response.status, 431);
    let response = http(&server.addr, &upgrade_request("/socket/websocket?vsn=2.0.0", &[("x-small", "ok")]));
    assert_eq!(response.status, 101);
}
