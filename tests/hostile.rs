//! Hostile clients and abuse (the robustness issue): every case runs over real
//! sockets, bounded in time, and afterwards the process's threads and file
//! descriptors return to where they were.

use bytes::Bytes;
use crossbeam_channel::Receiver;
use phx_channels::client::{Client, ClientError};
use phx_channels::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tungstenite::Message as WsMessage;
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::frame::coding::{Data, OpCode};

/// Tests in this file count the process's threads, so they run one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    let _ = env_logger::builder().is_test(true).try_init();
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The server's threads in this process: the endpoint's own (`phx-*`, spare channel
/// threads included) and the channel threads, which are named after their topics. The test harness's threads come and go
/// with the tests, so they are left out.
fn threads() -> usize {
    const SERVER: [&str; 5] = ["phx-", "room:", "stuck:", "panicky:", "slowjoin:"];
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| SERVER.iter().any(|prefix| name.starts_with(prefix)))
        .count()
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap().trim().trim_end_matches("kB").trim().parse().unwrap()
}

/// Threads and fds when the endpoint is idle; `settle` waits for them to come back.
struct Baseline {
    threads: usize,
    fds: usize,
}

impl Baseline {
    /// With a server running: waits until its own threads have all started (each
    /// names itself only once it runs) and the counts hold still, then takes them.
    fn take() -> Baseline {
        // Two reactors, the acceptor, two connect workers and the presence thread.
        const ENDPOINT_THREADS: usize = 6;
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = (threads(), fds());
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = (threads(), fds());
            if (now == last && now.0 >= ENDPOINT_THREADS) || Instant::now() > deadline {
                return Baseline { threads: now.0, fds: now.1 };
            }
            last = now;
        }
    }

    /// Before any server starts: nothing of a server is running.
    fn without_server() -> Baseline {
        Baseline { threads: threads(), fds: fds() }
    }

    fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while (threads() != self.threads || fds() != self.fds) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(threads(), self.threads, "threads back to baseline");
        assert_eq!(fds(), self.fds, "file descriptors back to baseline");
    }
}

/// Joins, echoes and broadcasts.
struct Room {
    terminated: Arc<AtomicUsize>,
}

impl Channel for Room {
    fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "echo" => Handled::reply_ok(payload),
            "broadcast" => {
                socket.broadcast("broadcast", payload).ok();
                Handled::ok()
            }
            _ => Handled::NoReply,
        }
    }

    fn terminate(&mut self, reason: &StopReason, _: &mut Socket) {
        if *reason == StopReason::draining() {
            self.terminated.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Blocks in `handle_in` until the test lets it go.
struct Stuck {
    release: Receiver<()>,
}

impl Channel for Stuck {
    fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, _: &str, _: Payload, _: &mut Socket) -> Handled {
        let _ = self.release.recv();
        Handled::ok()
    }
}

/// Panics in the callback its join payload names.
struct Panicky {
    at: String,
}

impl Channel for Panicky {
    fn join(&mut self, _: &str, payload: &Payload, socket: &mut Socket) -> JoinResult {
        self.at = payload.get("at").and_then(|v| v.as_str()).unwrap_or("").to_owned();
        if self.at == "join" {
            panic!("in join");
        }
        socket.subscribe("panicky:extra");
        Ok(Payload::empty())
    }

    fn intercept(&self) -> &[&str] {
        &["out"]
    }

    fn handle_in(&mut self, event: &str, _: Payload, _: &mut Socket) -> Handled {
        match event {
            "stop" => Handled::stop(StopReason::Normal),
            _ => panic!("in handle_in"),
        }
    }

    fn handle_out(&mut self, _: &str, _: &Payload, _: &mut Socket) -> Flow {
        panic!("in handle_out")
    }

    fn handle_info(&mut self, _: Info, _: &mut Socket) -> Flow {
        panic!("in handle_info")
    }

    fn terminate(&mut self, _: &StopReason, _: &mut Socket) {
        panic!("in terminate")
    }
}

/// Takes its time to join.
struct SlowJoin;

impl Channel for SlowJoin {
    fn join(&mut self, _: &str, _: &Payload, _: &mut Socket) -> JoinResult {
        std::thread::sleep(Duration::from_millis(300));
        Ok(Payload::empty())
    }
}

struct Server {
    endpoint: Endpoint,
    terminated: Arc<AtomicUsize>,
    release: crossbeam_channel::Sender<()>,
}

fn server(
    configure: impl FnOnce(EndpointBuilder) -> EndpointBuilder,
    socket: impl FnOnce(UserSocket) -> UserSocket,
) -> Server {
    let terminated = Arc::new(AtomicUsize::new(0));
    let (release, released) = crossbeam_channel::unbounded();
    let t = terminated.clone();
    let user_socket = socket(
        UserSocket::new()
            .check_origin(CheckOrigin::Off)
            .channel("room:*", move |_| Room { terminated: t.clone() })
            .channel("stuck:*", move |_| Stuck { release: released.clone() })
            .channel("panicky:*", |_| Panicky { at: String::new() })
            .channel("slowjoin:*", |_| SlowJoin),
    );
    // Spare channel threads exit soon after their channel, so that every test's threads
    // come back to its baseline well within `settle`'s wait.
    let builder = Endpoint::builder()
        .bind("127.0.0.1:0")
        .reactors(2)
        .connect_workers(2)
        .channel_thread_keep_alive(Duration::from_millis(100))
        .socket("/socket", user_socket);
    let endpoint = configure(builder).start().unwrap();
    Server { endpoint, terminated, release }
}

impl Server {
    fn addr(&self) -> SocketAddr {
        self.endpoint.local_addr()
    }

    fn client(&self) -> Client {
        Client::builder(self.addr().to_string()).connect().unwrap()
    }
}

/// Sends `bytes` on a fresh TCP connection and returns everything the server sends
/// back before it closes (bounded by a timeout).
fn raw_exchange(addr: SocketAddr, bytes: &[u8], hold: bool) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stream.write_all(bytes).unwrap();
    if !hold {
        let _ = stream.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out);
    out
}

fn status_line(response: &[u8]) -> String {
    String::from_utf8_lossy(response).lines().next().unwrap_or("").to_owned()
}

#[test]
fn garbage_before_the_handshake_gets_400_and_a_close() {
    let _serial = serial();
    let server = server(|b| b, |s| s);
    let baseline = Baseline::take();
    let garbage: Vec<u8> = (0..2000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let response = raw_exchange(server.addr(), &garbage, false);
    assert_eq!(status_line(&response), "HTTP/1.1 400 Bad Request");
    baseline.settle();
    assert!(server.endpoint.stats().refused_connections >= 1);
    server.endpoint.shutdown();
}

#[test]
fn a_slowloris_client_is_closed_after_the_handshake_timeout() {
    let _serial = serial();
    let server = server(|b| b.handshake_timeout(Duration::from_millis(300)), |s| s);
    let baseline = Baseline::take();
    let began = Instant::now();
    let response = raw_exchange(server.addr(), b"GET /socket/websocket HTTP/1.1\r\nHost: x\r\nX-Slow: ", true);
    assert_eq!(status_line(&response), "HTTP/1.1 408 Request Timeout");
    assert!(began.elapsed() < Duration::from_secs(4), "closed by the timeout, not by the client");
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn oversized_headers_get_431() {
    let _serial = serial();
    let server = server(|b| b.max_header_bytes(4096), |s| s);
    let baseline = Baseline::take();
    let request = format!("GET /socket/websocket HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(10_000));
    let response = raw_exchange(server.addr(), request.as_bytes(), true);
    assert_eq!(status_line(&response), "HTTP/1.1 431 Request Header Fields Too Large");
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn connections_over_the_cap_get_503() {
    let _serial = serial();
    let server = server(|b| b.max_connections(3), |s| s);
    let clients: Vec<Client> = (0..3).map(|_| server.client()).collect();
    let refused = Client::builder(server.addr().to_string()).connect();
    assert!(matches!(refused, Err(ClientError::Refused { status: 503, .. })), "{:?}", refused.err());
    drop(clients);
    server.endpoint.shutdown();
}

#[test]
fn an_oversized_frame_closes_with_1009() {
    let _serial = serial();
    let server = server(|b| b, |s| s.max_frame_size(1000));
    let baseline = Baseline::take();
    let mut client = server.client();
    client.join("room:1", json!({})).unwrap();
    client.send_raw(WsMessage::text(format!("[null,\"1\",\"room:1\",\"echo\",\"{}\"]", "x".repeat(2000)))).unwrap();
    assert_eq!(client.wait_close().unwrap().map(|c| c.0), Some(1009));
    drop(client);
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn fragmented_messages_are_assembled_and_capped() {
    let _serial = serial();
    let server = server(|b| b, |s| s.max_frame_size(1000));
    let baseline = Baseline::take();
    let mut client = server.client();
    client.join("room:1", json!({})).unwrap();
    // A valid message in three fragments is answered like any other.
    let text = br#"["1","7","room:1","echo",{"a":"fragmented"}]"#;
    client
        .send_raw(WsMessage::Frame(Frame::message(
            Bytes::copy_from_slice(&text[..10]),
            OpCode::Data(Data::Text),
            false,
        )))
        .unwrap();
    client
        .send_raw(WsMessage::Frame(Frame::message(
            Bytes::copy_from_slice(&text[10..20]),
            OpCode::Data(Data::Continue),
            false,
        )))
        .unwrap();
    client
        .send_raw(WsMessage::Frame(Frame::message(
            Bytes::copy_from_slice(&text[20..]),
            OpCode::Data(Data::Continue),
            true,
        )))
        .unwrap();
    let reply = client.wait_reply("7").unwrap();
    assert_eq!(reply.response, Payload::Json(json!({"a": "fragmented"})));
    // Fragments that add up past the limit close the connection with 1009.
    client
        .send_raw(WsMessage::Frame(Frame::message(Bytes::from(vec![b' '; 800]), OpCode::Data(Data::Text), false)))
        .unwrap();
    client
        .send_raw(WsMessage::Frame(Frame::message(Bytes::from(vec![b' '; 800]), OpCode::Data(Data::Continue), true)))
        .unwrap();
    assert_eq!(client.wait_close().unwrap().map(|c| c.0), Some(1009));
    drop(client);
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn invalid_utf8_closes_with_1007() {
    let _serial = serial();
    let server = server(|b| b, |s| s);
    let baseline = Baseline::take();
    let mut client = server.client();
    let bad = Bytes::from_static(b"[null,\"1\",\"room:1\",\"phx_join\",{\"x\":\"\xff\xfe\"}]");
    client.send_raw(WsMessage::Frame(Frame::message(bad, OpCode::Data(Data::Text), true))).unwrap();
    assert_eq!(client.wait_close().unwrap().map(|c| c.0), Some(1007));
    drop(client);
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn v2_frames_that_are_not_arrays_close_without_a_reply() {
    let _serial = serial();
    let server = server(|b| b, |s| s);
    let baseline = Baseline::take();
    // A numeric ref is no longer malformed: refs are any JSON value (tests/fidelity.rs).
    for frame in [r#"{"topic":"room:1"}"#, "42", "[1,2,3]", "not json"] {
        let mut client = server.client();
        client.join("room:1", json!({})).unwrap();
        client.send_raw(WsMessage::text(frame)).unwrap();
        let close = client.wait_close().unwrap();
        assert_eq!(close.map(|c| c.0), Some(1007), "{frame}");
        // Nothing but the close arrived: no reply to the bad frame.
        assert!(client.recv().is_err(), "{frame}: no reply");
    }
    assert!(server.endpoint.stats().malformed_frames >= 4);
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn ten_thousand_joins_on_one_connection_stop_at_the_channel_limit() {
    let _serial = serial();
    let server = server(|b| b, |s| s);
    let baseline = Baseline::take();
    let mut client = Client::builder(server.addr().to_string()).timeout(Duration::from_secs(30)).connect().unwrap();
    let refs: Vec<String> = (0..10_000)
        .map(|i| {
            let msg_ref = client.make_ref();
            let msg = Message {
                join_ref: Some(msg_ref.clone().into()),
                msg_ref: Some(msg_ref.clone().into()),
                ..Message::new(format!("room:{i}"), "phx_join", json!({}))
            };
            client.send(&msg).unwrap();
            msg_ref
        })
        .collect();
    let mut ok = 0;
    for msg_ref in &refs {
        let reply = client.wait_reply(msg_ref).unwrap();
        match reply.status.as_str() {
            "ok" => ok += 1,
            _ => assert_eq!(reply.response, Payload::Json(json!({"reason": "too many channels joined"}))),
        }
    }
    assert_eq!(ok, 100);
    assert_eq!(server.endpoint.stats().channels, 100);
    drop(client);
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn a_join_flood_beyond_the_thread_cap_is_refused_with_a_reason() {
    let _serial = serial();
    let server = server(|b| b.max_channel_threads(50), |s| s);
    let baseline = Baseline::take();
    let mut clients: Vec<Client> = (0..10).map(|_| server.client()).collect();
    let mut refused = 0;
    for (c, client) in clients.iter_mut().enumerate() {
        for i in 0..10 {
            let reply = client.join(&format!("room:{c}-{i}"), json!({})).unwrap();
            if reply.status == "error" {
                assert_eq!(reply.response, Payload::Json(json!({"reason": "too many channel threads"})));
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 50);
    assert_eq!(server.endpoint.stats().refused_joins, 50);
    drop(clients);
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn a_client_that_never_reads_is_closed_while_others_keep_receiving() {
    let _serial = serial();
    let limits = OutboundLimits::default().max_frames(1000).max_bytes(256 * 1024);
    let server = server(|b| b, |s| s.outbound_limits(limits));
    let baseline = Baseline::take();
    let rss_before = rss_kib();
    // The never-reading client: joins, then never reads again.
    let mut stalled = server.client();
    stalled.join("room:flood", json!({})).unwrap();
    let mut reader = Client::builder(server.addr().to_string()).timeout(Duration::from_secs(20)).connect().unwrap();
    reader.join("room:flood", json!({})).unwrap();
    // Broadcasts go out in batches the reader takes in before the next batch, so the
    // reader never falls behind by more than a batch (200 KB, within its limits), while
    // the stalled client falls further behind with every batch. Bytes the reader has
    // read no longer count against it, however late its reactor gets to run again.
    let pad = "x".repeat(4000);
    let (batches, batch) = (100, 50);
    for b in 0..batches {
        for i in 0..batch {
            server.endpoint.broadcast("room:flood", "tick", json!({"seq": b * batch + i, "pad": pad})).unwrap();
        }
        for i in 0..batch {
            let msg = reader.recv_event("room:flood", "tick").unwrap();
            assert_eq!(msg.payload.get("seq"), Some(&json!(b * batch + i)));
        }
    }
    let growth = rss_kib().saturating_sub(rss_before);
    assert!(growth < 64 * 1024, "RSS grew by {growth} KiB for 20 MB of broadcasts");
    // The close frame is queued after the count, so once it is read the count is in.
    assert_eq!(stalled.wait_close().ok().flatten().map(|c| c.0).unwrap_or(1008), 1008);
    assert_eq!(server.endpoint.stats().slow_consumer_closes, 1);
    drop((stalled, reader));
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn a_client_that_disconnects_during_a_join_leaves_nothing_behind() {
    let _serial = serial();
    let server = server(|b| b, |s| s);
    let baseline = Baseline::take();
    for _ in 0..5 {
        let mut client = server.client();
        client.push_async("slowjoin:1", "phx_join", json!({})).unwrap();
        drop(client);
    }
    std::thread::sleep(Duration::from_millis(400));
    baseline.settle();
    assert_eq!(server.endpoint.stats().channels, 0);
    server.endpoint.shutdown();
}

#[test]
fn a_handler_that_blocks_forever_holds_back_only_its_channel_and_not_shutdown() {
    let _serial = serial();
    // Taken before the server starts: after its shutdown, none of its threads remain.
    let baseline = Baseline::without_server();
    let server = server(|b| b.shutdown_timeout(Duration::from_millis(500)), |s| s);
    let mut client = server.client();
    client.join("stuck:1", json!({})).unwrap();
    client.join("room:1", json!({})).unwrap();
    client.push_async("stuck:1", "anything", json!({})).unwrap();
    for i in 0..20 {
        let reply = client.push("room:1", "echo", json!({ "i": i })).unwrap();
        assert_eq!(reply.response, Payload::Json(json!({ "i": i })));
    }
    assert_eq!(client.heartbeat().unwrap().status, "ok");
    let began = Instant::now();
    server.endpoint.shutdown();
    assert!(began.elapsed() < Duration::from_secs(3), "shutdown took {:?}", began.elapsed());
    assert_eq!(client.wait_close().unwrap().map(|c| c.0), Some(1012));
    // Let the stuck handler go, so its thread can end.
    server.release.send(()).unwrap();
    drop(client);
    baseline.settle();
}

#[test]
fn a_handler_that_panics_in_every_callback_only_errors_its_own_channel() {
    let _serial = serial();
    let server = server(|b| b, |s| s);
    let baseline = Baseline::take();
    let mut client = server.client();
    client.join("room:1", json!({})).unwrap();
    // join
    let reply = client.join("panicky:join", json!({"at": "join"})).unwrap();
    assert_eq!(reply.response, Payload::Json(json!({"reason": "join crashed"})));
    // handle_in
    client.join("panicky:in", json!({})).unwrap();
    client.push_async("panicky:in", "boom", json!({})).unwrap();
    assert_eq!(
        client.recv_event("panicky:in", "phx_error").unwrap().payload,
        Payload::Json(json!({"reason": "channel_crash"}))
    );
    // handle_out
    client.join("panicky:out", json!({})).unwrap();
    server.endpoint.broadcast("panicky:out", "out", json!({})).unwrap();
    client.recv_event("panicky:out", "phx_error").unwrap();
    // handle_info
    client.join("panicky:info", json!({})).unwrap();
    server.endpoint.broadcast("panicky:extra", "anything", json!({})).unwrap();
    client.recv_event("panicky:info", "phx_error").unwrap();
    // terminate: a graceful stop still closes the channel
    client.join("panicky:terminate", json!({})).unwrap();
    client.push_async("panicky:terminate", "stop", json!({})).unwrap();
    client.recv_event("panicky:terminate", "phx_close").unwrap();
    // The connection and its other channel are fine.
    let reply = client.push("room:1", "echo", json!({"still": "here"})).unwrap();
    assert_eq!(reply.response, Payload::Json(json!({"still": "here"})));
    // The panic in terminate comes after phx_close went out, so give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.endpoint.stats().panics < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.endpoint.stats().panics, 5, "join, handle_in, handle_out, handle_info, terminate");
    drop(client);
    baseline.settle();
    server.endpoint.shutdown();
}

#[test]
fn shutdown_with_a_thousand_channels_terminates_every_one_and_sends_1012() {
    let _serial = serial();
    let server = server(|b| b.drain_batches(4, Duration::from_millis(50)), |s| s);
    let mut clients: Vec<Client> = (0..10).map(|_| server.client()).collect();
    for (c, client) in clients.iter_mut().enumerate() {
        for i in 0..100 {
            let msg_ref = client.make_ref();
            let msg = Message {
                join_ref: Some(msg_ref.clone().into()),
                msg_ref: Some(msg_ref.into()),
                ..Message::new(format!("room:{c}-{i}"), "phx_join", json!({}))
            };
            client.send(&msg).unwrap();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while server.endpoint.stats().channels < 1000 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(server.endpoint.stats().channels, 1000);
    let threads_before = threads();
    server.endpoint.shutdown();
    assert_eq!(server.terminated.load(Ordering::SeqCst), 1000, "every terminate ran with draining");
    for client in &mut clients {
        assert_eq!(client.wait_close().unwrap().map(|c| c.0), Some(1012));
    }
    // A thread counted as ended has still to return from its last function.
    let deadline = Instant::now() + Duration::from_secs(5);
    while threads() + 1000 > threads_before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(threads() + 1000 <= threads_before, "channel threads ended");
}
