//! The long-poll transport over real sockets, request by request: every status a
//! long-poll answer can carry, the headers every answer has, the bounds (sessions,
//! buffered output, bodies, a batch's lines), V1 and V2, and a long-poll client and a
//! WebSocket client on one topic.

mod common;

use common::*;
use phx_channels::client::Client;
use phx_channels::serializer::{ClientFrame, Serializer};
use phx_channels::token::MaxAge;
use phx_channels::{LongPollSettings, OutboundLimits};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const V2: &str = "/socket/longpoll?vsn=2.0.0";

/// A test server whose `/socket` mount serves long-poll with `settings`.
fn long_poll_server(settings: LongPollSettings) -> Server {
    server().socket(move |socket| socket.long_poll(settings)).start()
}

fn client(server: &Server, target: &str) -> LongPoll {
    LongPoll::new(&server.addr, target)
}

fn stats_until(server: &Server, what: &str, check: impl Fn(phx_channels::StatsSnapshot) -> bool) {
    assert!(
        wait_until(Duration::from_secs(5), || check(server.endpoint.stats())),
        "{what}: {:?}",
        server.endpoint.stats()
    );
}

#[test]
fn a_get_without_a_token_runs_connect_and_answers_410_with_a_token() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, "/socket/longpoll?vsn=2.0.0&user_id=ada");
    let response = lp.request("GET", &[], "");
    let body = json_body(&response);
    assert_eq!(body["status"], 410);
    assert_eq!(body["messages"], json!([]));
    assert!(body["token"].as_str().is_some_and(|t| t.starts_with("SFMyNTY.")), "a Phoenix.Token: {body}");
    let connects = server.events().connects();
    assert_eq!(connects.len(), 1);
    assert_eq!(connects[0]["params"], json!({"vsn": "2.0.0", "user_id": "ada"}));
    assert_eq!(server.endpoint.stats().long_poll_sessions, 1);
    assert_eq!(server.endpoint.stats().long_poll_sessions_total, 1);

    // A token that is not one of this server's connects anew.
    lp.token = Some("SFMyNTY.forged.token".into());
    let again = lp.get();
    assert_eq!(again["status"], 410);
    assert_ne!(again["token"], body["token"]);
    assert_eq!(server.events().connects().len(), 2);
}

#[test]
fn a_socket_without_long_poll_answers_404_there() {
    let server = start();
    let response = client(&server, V2).request("GET", &[], "");
    assert_eq!(response.status, 404);
}

#[test]
fn a_refused_connect_answers_403() {
    let server = long_poll_server(LongPollSettings::new());
    for target in [
        "/socket/longpoll?vsn=2.0.0&refuse=403",
        // Phoenix's long-poll refuses every `connect` error with 403, whatever the
        // WebSocket would answer.
        "/socket/longpoll?vsn=2.0.0&refuse=429",
        "/socket/longpoll?vsn=2.0.0&refuse=panic",
        "/socket/longpoll?vsn=3.0.0",
    ] {
        let body = client(&server, target).get();
        assert_eq!(body, json!({"status": 403}), "{target}");
    }
    assert_eq!(server.endpoint.stats().long_poll_sessions, 0);
    assert_eq!(server.endpoint.stats().refused_connections, 4);
}

#[test]
fn an_origin_the_socket_does_not_allow_gets_403_on_every_method() {
    let server = long_poll_server(LongPollSettings::new());
    let evil = client(&server, V2).header("origin", "http://evil.example");
    assert_eq!(json_body(&evil.request("GET", &[], "")), json!({"status": 403}));
    assert_eq!(json_body(&evil.request("POST", &[], "[]")), json!({"status": 403}));
    assert_eq!(json_body(&evil.request("OPTIONS", &[], "")), json!({"status": 403}));
    assert!(server.events().connects().is_empty());
    let mut local = client(&server, V2).header("origin", "http://localhost:4000");
    local.connect();
}

#[test]
fn join_push_and_reply_over_long_poll() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    lp.connect();
    let reply = lp.join("room:lp", "1");
    assert_eq!(reply, json!(["1", "1", "room:lp", "phx_reply", {"status": "ok", "response": {}}]));
    assert!(server.events().contains("join room:lp"));

    assert_eq!(lp.post(&v2(Some("1"), "2", "room:lp", "echo", json!({"a": 1})))["status"], 200);
    let seen = lp.messages_until(|m| m[1] == "2");
    assert!(
        seen.contains(&json!(["1", "2", "room:lp", "phx_reply", {"status": "ok", "response": {"a": 1}}])),
        "{seen:?}"
    );
    assert_eq!(server.endpoint.stats().channels, 1);
}

#[test]
fn a_poll_is_held_until_output_arrives() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_secs(10)));
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:held", "1");
    let poll = lp.poll_in_background();
    server.endpoint.broadcast("room:held", "news", json!({"n": 1})).unwrap();
    // Held for the broadcast: an answer without it (204 at the end of the window) fails.
    let body = poll.join().unwrap();
    assert_eq!(body["status"], 200, "{body}");
    assert_eq!(body["token"], json!(lp.token));
    let messages: Vec<Value> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(messages, [json!([null, null, "room:held", "news", {"n": 1}])]);
}

#[test]
fn an_empty_window_answers_204_with_the_token() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_millis(300)));
    let mut lp = client(&server, V2);
    let token = lp.connect();
    let body = lp.get();
    assert_eq!(body, json!({"status": 204, "token": token, "messages": []}));
}

#[test]
fn a_second_poll_ends_the_first_with_204() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_secs(10)));
    let mut lp = client(&server, V2);
    lp.connect();
    let first = lp.poll_in_background();
    let second = lp.poll_in_background();
    assert_eq!(first.join().unwrap()["status"], 204, "the replaced poll is answered");
    lp.post(&v2(None, "hb", "phoenix", "heartbeat", json!({})));
    assert_eq!(second.join().unwrap()["status"], 200, "the latest poll gets the output");
}

#[test]
fn a_batch_is_handled_up_to_its_first_hundred_lines() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_millis(300)));
    let mut lp = client(&server, V2);
    lp.connect();
    let lines: Vec<String> = (0..150).map(|n| v2(None, &format!("h{n}"), "phoenix", "heartbeat", json!({}))).collect();
    assert_eq!(lp.post_batch(&lines), json!({"status": 200}));
    let mut refs = Vec::new();
    loop {
        let body = lp.get();
        if body["status"] == 204 {
            break;
        }
        for message in body["messages"].as_array().unwrap() {
            let message: Value = serde_json::from_str(message.as_str().unwrap()).unwrap();
            assert_eq!(message[4], json!({"status": "ok", "response": {}}));
            refs.push(message[1].as_str().unwrap().to_owned());
        }
    }
    let expected: Vec<String> = (0..100).map(|n| format!("h{n}")).collect();
    assert_eq!(refs, expected);
}

#[test]
fn a_batch_carries_text_and_base64_binary_frames() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:bin", "1");
    let push = message(Some("1"), Some("2"), "room:bin", "bin_in", json!(null));
    let push = phx_channels::Message { payload: phx_channels::Payload::Binary(vec![1, 2, 3].into()), ..push };
    let ClientFrame::Binary(bytes) = Serializer::V2.encode_client(&push).unwrap() else { panic!("a binary frame") };
    let lines = [btoa_unpadded(&bytes), v2(Some("1"), "3", "room:bin", "echo", json!({"text": true}))];
    assert_eq!(lp.post_batch(&lines), json!({"status": 200}));
    let seen = lp.messages_until(|m| m[1] == "3");
    let reply_to = |r: &str| seen.iter().find(|m| m[1] == r).map(|m| m[4]["response"].clone());
    assert_eq!(reply_to("2"), Some(json!({"unhandled": "bin_in"})), "the binary push reached the channel: {seen:?}");
    assert_eq!(reply_to("3"), Some(json!({"text": true})));
}

#[test]
fn a_line_that_is_not_base64_answers_400_and_the_session_lives_on() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    lp.connect();
    let lines = [v2(None, "a", "phoenix", "heartbeat", json!({})), "{not base64}".to_owned()];
    assert_eq!(lp.post_batch(&lines), json!({"status": 400}));
    assert_eq!(lp.messages(), [json!([null, "a", "phoenix", "phx_reply", {"status": "ok", "response": {}}])]);
    assert_eq!(lp.post(&v2(None, "b", "phoenix", "heartbeat", json!({}))), json!({"status": 200}));
}

#[test]
fn binary_frames_from_the_server_are_left_out() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:out", "1");
    lp.post(&v2(Some("1"), "2", "room:out", "push_binary", json!({})));
    let seen = lp.messages_until(|m| m[1] == "2");
    assert!(seen.iter().all(|m| m[3] != "bin"), "no binary push: {seen:?}");
    assert_eq!(seen.last().unwrap()[4]["status"], "ok");
}

#[test]
fn a_post_without_a_live_session_answers_410() {
    let server = server()
        .socket(|s| s.long_poll(LongPollSettings::new().token_max_age(MaxAge::Seconds(1))))
        .mount("/other", |s| s.long_poll(LongPollSettings::new()))
        .start();
    let heartbeat = v2(None, "1", "phoenix", "heartbeat", json!({}));
    let mut lp = client(&server, V2);
    assert_eq!(lp.post(&heartbeat), json!({"status": 410}), "no token");
    lp.token = Some("SFMyNTY.g2gD.bad".into());
    assert_eq!(lp.post(&heartbeat), json!({"status": 410}), "a forged token");

    let token = lp.connect();
    assert_eq!(lp.post(&heartbeat), json!({"status": 200}));
    let mut other = client(&server, "/other/longpoll?vsn=2.0.0");
    other.token = Some(token.clone());
    assert_eq!(other.post(&heartbeat), json!({"status": 410}), "a token of another mount");

    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(lp.post(&heartbeat), json!({"status": 410}), "an expired token");
    assert_eq!(lp.get()["status"], 410, "a poll with it connects anew");
    assert_ne!(lp.token.as_deref(), Some(token.as_str()));
}

#[test]
fn the_token_may_come_as_a_param() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    let token = lp.connect();
    let by_param = client(&server, &format!("{V2}&token={token}"));
    assert_eq!(by_param.post(&v2(None, "p", "phoenix", "heartbeat", json!({}))), json!({"status": 200}));
    assert_eq!(lp.messages()[0][1], "p");
}

#[test]
fn a_preflight_is_answered_and_other_methods_get_400() {
    let server = long_poll_server(LongPollSettings::new());
    let lp = client(&server, V2);
    let asked = [("access-control-request-headers", "x-phoenix-longpoll-token, content-type")];
    let preflight = lp.request("OPTIONS", &asked, "");
    assert_eq!(preflight.status, 200);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(preflight.header("access-control-allow-headers"), Some("x-phoenix-longpoll-token, content-type"));
    assert_eq!(preflight.header("access-control-allow-methods"), Some("get, post, options"));
    assert_eq!(preflight.header("access-control-max-age"), Some("3600"));
    for method in ["PUT", "DELETE", "PATCH", "HEAD"] {
        let response = lp.request(method, &[], "");
        assert_eq!(response.status, 400, "{method}");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"), "{method}");
    }
    assert!(server.events().connects().is_empty());
}

#[test]
fn the_auth_token_header_reaches_connect() {
    let server = server().socket(|s| s.auth_token(true).long_poll(LongPollSettings::new())).start();
    client(&server, V2).header("x-phoenix-authtoken", "s3cret token").connect();
    assert_eq!(server.events().connects()[0]["auth_token"], "s3cret token");

    let without = long_poll_server(LongPollSettings::new());
    client(&without, V2).header("x-phoenix-authtoken", "s3cret").connect();
    assert_eq!(without.events().connects()[0]["auth_token"], Value::Null, "only when the socket takes auth tokens");
}

#[test]
fn a_client_that_stops_polling_is_dropped_and_its_channels_terminate() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_millis(200)));
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:gone", "1");
    // No more polls: after 1.5 windows the session ends.
    server.wait_terminate("room:gone", "{shutdown, closed}");
    stats_until(&server, "the session is counted as abandoned", |s| {
        s.long_poll_abandoned == 1 && s.long_poll_sessions == 0 && s.channels == 0
    });
    assert_eq!(lp.post(&v2(None, "1", "phoenix", "heartbeat", json!({}))), json!({"status": 410}));
}

#[test]
fn polling_keeps_a_session_alive() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_millis(200)));
    let mut lp = client(&server, V2);
    let token = lp.connect();
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        assert_eq!(lp.get(), json!({"status": 204, "token": token, "messages": []}));
    }
    assert_eq!(server.endpoint.stats().long_poll_abandoned, 0);
}

#[test]
fn sessions_past_the_limit_get_503() {
    let server = server()
        .socket(|s| s.long_poll(LongPollSettings::new().window(Duration::from_millis(200))))
        .endpoint(|e| e.max_long_poll_sessions(1))
        .start();
    client(&server, V2).connect();
    let response = client(&server, V2).request("GET", &[], "");
    assert_eq!(response.status, 503);
    assert_eq!(response.body, "Service Unavailable: too many long-poll sessions");
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert_eq!(server.events().connects().len(), 1, "connect does not run past the limit");
    // The first session is abandoned; then there is room again.
    stats_until(&server, "the first session ends", |s| s.long_poll_sessions == 0);
    client(&server, V2).connect();
}

#[test]
fn bodies_are_bounded() {
    let server = long_poll_server(LongPollSettings::new().max_body_bytes(64));
    let mut lp = client(&server, V2);
    lp.connect();
    let response = lp.request("POST", &[], &"x".repeat(65));
    assert_eq!(response.status, 413);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    let token = lp.token.as_deref().unwrap();
    let chunked = format!(
        "POST {V2} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-phoenix-longpoll-token: {token}\r\n\
         transfer-encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    assert_eq!(http(&server.addr, &chunked).status, 411);
    // With a Content-Length too, the framing is ambiguous: 400.
    assert_eq!(lp.request("POST", &[("transfer-encoding", "chunked")], "").status, 400);
    assert_eq!(lp.post(&v2(None, "ok", "phoenix", "heartbeat", json!({}))), json!({"status": 200}));
}

#[test]
fn ambiguous_body_framing_gets_400_and_a_close_and_reaches_no_session() {
    // RFC 9112 6.3: two readers of these requests could end the body in different
    // places, and a proxy in front that takes the other reading would see another
    // request in what this server reads as the body.
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    lp.connect();
    let token = lp.token.clone().unwrap();
    let smuggled = v2(None, "smuggled", "phoenix", "heartbeat", json!({}));
    let len = smuggled.len();
    let cases: [(&str, &[(&str, String)]); 7] = [
        ("two different lengths", &[("Content-Length", format!("{len}")), ("Content-Length", "0".into())]),
        ("two equal lengths", &[("Content-Length", format!("{len}")), ("Content-Length", format!("{len}"))]),
        ("a list of lengths", &[("Content-Length", format!("{len}, 0"))]),
        ("a length that is not a number", &[("Content-Length", "0x40".into())]),
        ("a signed length", &[("Content-Length", format!("+{len}"))]),
        ("both framings", &[("Transfer-Encoding", "chunked".into()), ("Content-Length", format!("{len}"))]),
        ("both, the other way", &[("Content-Length", format!("{len}")), ("Transfer-Encoding", "identity".into())]),
    ];
    for method in ["POST", "GET"] {
        for (what, headers) in cases.iter() {
            let mut request =
                format!("{method} {V2} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-phoenix-longpoll-token: {token}\r\n");
            for (name, value) in headers.iter() {
                request.push_str(&format!("{name}: {value}\r\n"));
            }
            request.push_str("\r\n");
            request.push_str(&smuggled);
            let response = http_then_closed(&server.addr, &request);
            assert_eq!(response.status, 400, "{method}, {what}");
        }
    }
    // A proper POST still reaches the session, and nothing before it did.
    assert_eq!(lp.post(&v2(None, "proper", "phoenix", "heartbeat", json!({}))), json!({"status": 200}));
    let refs: Vec<Value> = lp.messages().iter().map(|m| m[1].clone()).collect();
    assert_eq!(refs, [json!("proper")]);
}

#[test]
fn a_body_announced_with_expect_100_continue_is_read() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    lp.connect();
    let frame = v2(None, "c", "phoenix", "heartbeat", json!({}));
    let head = format!(
        "POST {V2} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-phoenix-longpoll-token: {}\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        lp.token.as_deref().unwrap(),
        frame.len()
    );
    let (interim, mut stream) = http_exchange(&server.addr, &head);
    assert_eq!(interim.status, 100);
    std::io::Write::write_all(&mut stream, frame.as_bytes()).unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stream, &mut rest).unwrap();
    assert!(rest.ends_with("{\"status\":200}"), "{rest}");
    assert_eq!(lp.messages()[0][1], "c");
}

#[test]
fn a_frame_that_does_not_decode_ends_the_session() {
    let server = long_poll_server(LongPollSettings::new());
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:bad", "1");
    assert_eq!(lp.post("not json"), json!({"status": 400}));
    server.wait_terminate("room:bad", "{shutdown, closed}");
    assert_eq!(server.endpoint.stats().malformed_frames, 1);
    assert_eq!(lp.post(&v2(None, "1", "phoenix", "heartbeat", json!({}))), json!({"status": 410}));
}

#[test]
fn output_past_the_limits_ends_the_session_as_a_slow_consumer() {
    let limits = OutboundLimits::default().max_frames(20).max_bytes(1 << 20);
    let server = server().socket(move |s| s.outbound_limits(limits).long_poll(LongPollSettings::new())).start();
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:slow", "1");
    // Thirty broadcasts, never polled for.
    for n in 0..30 {
        server.endpoint.broadcast("room:slow", "news", json!({"n": n})).unwrap();
    }
    server.wait_terminate("room:slow", "{shutdown, closed}");
    stats_until(&server, "a slow consumer", |s| s.slow_consumer_closes == 1 && s.long_poll_sessions == 0);
}

#[test]
fn v1_clients_post_single_frames() {
    let server = long_poll_server(LongPollSettings::new());
    for target in ["/socket/longpoll?vsn=1.0.0", "/socket/longpoll"] {
        let mut lp = client(&server, target);
        lp.connect();
        let join = json!({"topic": "room:v1", "event": "phx_join", "payload": {}, "ref": "1"});
        assert_eq!(lp.post(&join.to_string()), json!({"status": 200}));
        let reply =
            json!({"topic": "room:v1", "event": "phx_reply", "payload": {"status": "ok", "response": {}}, "ref": "1"});
        assert_eq!(lp.messages(), [reply], "{target}");
        let push = json!({"topic": "room:v1", "event": "echo", "payload": {"v": 1}, "ref": "2"});
        lp.post(&push.to_string());
        assert_eq!(lp.messages()[0]["payload"], json!({"status": "ok", "response": {"v": 1}}));
    }
}

#[test]
fn long_poll_and_websocket_clients_see_each_others_broadcasts() {
    let server = long_poll_server(LongPollSettings::new());
    let mut ws = server.joined("room:mix");
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:mix", "1");

    let shout = |from: &str| json!({"event": "shout", "payload": {"from": from}});
    lp.post(&v2(Some("1"), "2", "room:mix", "broadcast", shout("long-poll")));
    let got = ws.recv_event("room:mix", "shout").unwrap();
    assert_eq!(json_of(&got.payload), json!({"from": "long-poll"}));

    ws.push("room:mix", "broadcast", shout("websocket")).unwrap();
    let seen = lp.messages_until(|m| m[3] == "shout" && m[4]["from"] == "websocket");
    assert!(seen.iter().any(|m| m[3] == "shout" && m[4]["from"] == "long-poll"), "its own broadcast too: {seen:?}");
}

#[test]
fn requests_reach_their_session_on_any_reactor() {
    let server = server().socket(|s| s.long_poll(LongPollSettings::new())).endpoint(|e| e.reactors(3)).start();
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:many", "1");
    for n in 0..12 {
        let msg_ref = format!("e{n}");
        lp.post(&v2(Some("1"), &msg_ref, "room:many", "echo", json!({"n": n})));
        let seen = lp.messages_until(|m| m[1] == msg_ref.as_str());
        assert_eq!(seen.last().unwrap()[4]["response"], json!({"n": n}));
    }
}

#[test]
fn a_disconnect_broadcast_ends_the_session_and_its_held_poll() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_secs(10)));
    let mut lp = client(&server, "/socket/longpoll?vsn=2.0.0&user_id=u7");
    lp.connect();
    lp.join("room:dc", "1");
    let held = lp.poll_in_background();
    server.endpoint.broadcast("user_socket:u7", "disconnect", json!({})).unwrap();
    assert_eq!(held.join().unwrap(), json!({"status": 410}));
    server.wait_terminate("room:dc", "{shutdown, closed}");
}

#[test]
fn shutdown_ends_sessions_and_answers_held_polls() {
    let server = long_poll_server(LongPollSettings::new().window(Duration::from_secs(10)));
    let mut lp = client(&server, V2);
    lp.connect();
    lp.join("room:bye", "1");
    let held = lp.poll_in_background();
    server.endpoint.shutdown();
    assert_eq!(held.join().unwrap(), json!({"status": 410}));
    server.wait_terminate("room:bye", "{shutdown, draining}");
}

#[test]
fn a_websocket_client_still_connects_beside_long_poll() {
    let server = long_poll_server(LongPollSettings::new());
    let mut ws: Client = server.client();
    assert_eq!(ws.heartbeat().unwrap().status, "ok");
}
