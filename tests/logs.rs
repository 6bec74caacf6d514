//! Log lines, captured with a logger of this test binary's own (PROTOCOL.md 7,
//! P84–P87, and the warnings and errors other checks ask for).
//!
//! Tests run in parallel and share the logger, so each one looks only for lines that
//! carry its own markers (a unique topic or param).

mod common;

use common::*;
use log::{Level, Log, Metadata, Record};
use phx_channels::{CheckOrigin, Endpoint, Scheduling};
use serde_json::json;
use std::sync::{Mutex, Once};
use std::time::Duration;

struct Capture(Mutex<Vec<(Level, String)>>);

impl Log for Capture {
    fn enabled(&self, _: &Metadata) -> bool {
        true
    }

    fn log(&self, record: &Record) {
        // Only the library's own lines (tungstenite traces every frame).
        if record.target().starts_with("phx_channels") {
            self.0.lock().unwrap().push((record.level(), record.args().to_string()));
        }
    }

    fn flush(&self) {}
}

static CAPTURE: Capture = Capture(Mutex::new(Vec::new()));
static INSTALL: Once = Once::new();

/// Installs the capturing logger (before any server starts in this binary).
fn capture() {
    INSTALL.call_once(|| {
        log::set_logger(&CAPTURE).expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Every captured line containing all of `needles`.
fn lines_with(needles: &[&str]) -> Vec<(Level, String)> {
    CAPTURE.0.lock().unwrap().iter().filter(|(_, line)| needles.iter().all(|n| line.contains(n))).cloned().collect()
}

/// Waits up to 5 s for a line containing all of `needles`; returns it.
fn wait_line(needles: &[&str]) -> (Level, String) {
    let mut found = None;
    let ok = wait_until(Duration::from_secs(5), || {
        found = lines_with(needles).into_iter().next();
        found.is_some()
    });
    assert!(ok, "no log line with {needles:?}");
    found.unwrap()
}

fn logging_server() -> Server {
    capture();
    server()
        .mount("/quiet", |s| s.log_connect(None))
        .mount("/strict", |s| s.check_origin(CheckOrigin::Allow(vec!["https://only.example".into()])))
        .start()
}

// --- P84 --------------------------------------------------------------------------------

#[test]
fn connect_is_logged_at_info_with_transport_serializer_and_filtered_params() {
    // P84, P86
    let server = logging_server();
    let _client = server
        .builder()
        .param("marker", "p84-ok")
        .param("token", "s3cr3t")
        .param("password", "hunter2")
        .connect()
        .unwrap();
    let (level, line) = wait_line(&["CONNECTED TO", "p84-ok"]);
    assert_eq!(level, Level::Info);
    assert!(line.contains("/socket"), "{line}");
    assert!(line.contains("Transport: :websocket"), "{line}");
    assert!(line.contains("Serializer: Phoenix.Socket.V2.JSONSerializer"), "{line}");
    assert!(line.contains("Parameters:") && line.contains("2.0.0"), "{line}");
    assert!(!line.contains("s3cr3t") && !line.contains("hunter2"), "{line}");
    assert_eq!(line.matches("[FILTERED]").count(), 2, "{line}");
}

#[test]
fn a_v1_connect_names_the_v1_serializer() {
    // P84
    let server = logging_server();
    let _client = server.builder().vsn(Some("1.0.0")).param("marker", "p84-v1").connect().unwrap();
    let (_, line) = wait_line(&["CONNECTED TO", "p84-v1"]);
    assert!(line.contains("Serializer: Phoenix.Socket.V1.JSONSerializer"), "{line}");
}

#[test]
fn a_refused_connect_is_logged_as_refused_connection() {
    // P84
    let server = logging_server();
    assert!(server.builder().param("marker", "p84-refused").param("refuse", "403").connect().is_err());
    let (level, line) = wait_line(&["REFUSED CONNECTION TO", "p84-refused"]);
    assert_eq!(level, Level::Info);
    assert!(line.contains("/socket"), "{line}");
}

#[test]
fn connect_logging_can_be_turned_off() {
    // P84
    let server = logging_server();
    let mut client = server.builder().path("/quiet").param("marker", "p84-off").connect().unwrap();
    assert_alive(&mut client);
    assert!(lines_with(&["p84-off"]).is_empty(), "{:?}", lines_with(&["p84-off"]));
}

// --- P85, P86 ---------------------------------------------------------------------------

#[test]
fn joins_are_logged_at_info_with_filtered_parameters() {
    // P85, P86
    let server = logging_server();
    let mut client = server.client();
    let params = json!({"visible": "shown-p85", "password": "pw-p85", "nested": {"auth_token": "tk-p85", "list": [{"password2": 1}]}});
    assert_eq!(client.join("room:logj", params).unwrap().status, "ok");
    let (level, line) = wait_line(&["JOINED room:logj in "]);
    assert_eq!(level, Level::Info);
    assert!(line.contains("Parameters:") && line.contains("shown-p85"), "{line}");
    assert!(!line.contains("pw-p85") && !line.contains("tk-p85"), "{line}");
    assert_eq!(line.matches("[FILTERED]").count(), 3, "{line}");
}

#[test]
fn refused_joins_are_logged_as_refused_join() {
    // P85
    let server = logging_server();
    let mut client = server.client();
    assert_eq!(client.join("room:logr", json!({"mode": "error"})).unwrap().status, "error");
    let (level, _) = wait_line(&["REFUSED JOIN room:logr in "]);
    assert_eq!(level, Level::Info);
}

#[test]
fn handle_in_is_logged_at_debug_with_the_event_topic_and_channel() {
    // P85, P86
    let server = logging_server();
    let mut client = server.joined("room:logh");
    client.push("room:logh", "echo", json!({"secret_token": "tk-h", "plain": "seen-h"})).unwrap();
    let (level, line) = wait_line(&["HANDLED echo INCOMING ON room:logh (", ") in "]);
    assert_eq!(level, Level::Debug);
    assert!(line.contains("Room"), "the channel's name: {line}");
    assert!(line.contains("seen-h") && !line.contains("tk-h"), "{line}");
}

#[test]
fn filtering_is_case_sensitive() {
    // P86
    let server = logging_server();
    let mut client = server.client();
    assert_eq!(client.join("room:logcase", json!({"Password": "cap-shown"})).unwrap().status, "ok");
    let (_, line) = wait_line(&["JOINED room:logcase"]);
    assert!(line.contains("cap-shown"), "{line}");
}

// --- P87 --------------------------------------------------------------------------------

#[test]
fn no_channel_log_lines_for_topics_starting_with_phoenix() {
    // P87
    let server = logging_server();
    let mut client = server.joined("phoenix:quiet");
    client.push("phoenix:quiet", "echo", json!({})).unwrap();
    client.heartbeat().unwrap();
    // A line for another topic, after those, proves the logger was working meanwhile.
    client.join("room:logp87", json!({})).unwrap();
    client.push("room:logp87", "echo", json!({})).unwrap();
    wait_line(&["HANDLED echo INCOMING ON room:logp87"]);
    assert!(lines_with(&["phoenix:quiet"]).is_empty(), "{:?}", lines_with(&["phoenix:quiet"]));
}

// --- Warnings and errors other checks ask for --------------------------------------------

#[test]
fn an_unmatched_join_is_logged_as_a_warning() {
    // P46
    let server = logging_server();
    let mut client = server.client();
    client.join("nope:logw", json!({})).unwrap();
    let (level, line) = wait_line(&["Ignoring unmatched topic \"nope:logw\""]);
    assert_eq!(level, Level::Warn, "{line}");
}

#[test]
fn the_channel_limit_is_logged_as_an_error() {
    // P47, D3
    let server = logging_server();
    let mut client = server.builder().path("/limited").param("marker", "p47").connect().unwrap();
    client.join("room:lim1", json!({})).unwrap();
    client.join("room:lim2", json!({})).unwrap();
    let (level, _) = wait_line(&["Reached max channels per transport limit of 1"]);
    assert_eq!(level, Level::Error);
}

#[test]
fn a_bad_vsn_is_logged_as_a_warning() {
    // P6
    let server = logging_server();
    assert!(server.builder().vsn(Some("9.9.9")).connect().is_err());
    let (level, _) = wait_line(&["9.9.9"]);
    assert_eq!(level, Level::Warn);
}

#[test]
fn a_rejected_origin_is_logged_as_an_error() {
    // P17
    let server = logging_server();
    assert!(server.builder().path("/strict").header("Origin", "https://evil-p17.example").connect().is_err());
    let (level, _) = wait_line(&["evil-p17.example"]);
    assert_eq!(level, Level::Error);
}

#[test]
fn crashes_and_abnormal_stops_are_logged_as_errors() {
    // P50, P66, P67
    let server = logging_server();
    let mut client = server.client();
    client.join("room:logjc", json!({"mode": "panic"})).unwrap();
    let (level, _) = wait_line(&["room:logjc", "crashed"]);
    assert_eq!(level, Level::Error);
    client.join("room:logstop", json!({})).unwrap();
    client.push_async("room:logstop", "stop", json!({"reason": "error:p66-why"})).unwrap();
    let (level, _) = wait_line(&["room:logstop", "stopped", "p66-why"]);
    assert_eq!(level, Level::Error);
    client.join("room:logboom", json!({})).unwrap();
    client.push_async("room:logboom", "boom", json!({})).unwrap();
    let (level, _) = wait_line(&["room:logboom", "crashed", "panics on purpose"]);
    assert_eq!(level, Level::Error);
}

#[test]
fn a_message_without_handle_info_is_logged_as_a_warning() {
    // P77
    let server = logging_server();
    let _client = server.joined("bare:logw");
    server.ctx.handle("bare:logw").send(1u8).unwrap();
    let (level, _) = wait_line(&["bare:logw", "unexpected message in handle_info"]);
    assert_eq!(level, Level::Warn);
}

#[test]
fn the_start_line_says_which_scheduling_policy_the_traffic_threads_run_under() {
    capture();
    let batch = Endpoint::builder().bind("127.0.0.1:0").start().unwrap();
    // The colon ends the address, so that port 4000 does not match 40001.
    let (level, line) = wait_line(&[&format!("listening on {}:", batch.local_addr())]);
    assert_eq!(level, Level::Info);
    if cfg!(target_os = "linux") {
        assert!(line.contains("traffic threads run under SCHED_BATCH"), "{line}");
        assert!(line.contains("threads their callbacks spawn inherit it"), "{line}");
    } else {
        assert!(line.contains("traffic threads keep the process's scheduling policy"), "{line}");
    }
    batch.shutdown();

    let unchanged = Endpoint::builder().bind("127.0.0.1:0").scheduling(Scheduling::Unchanged).start().unwrap();
    let (_, line) = wait_line(&[&format!("listening on {}:", unchanged.local_addr())]);
    assert!(line.contains("traffic threads keep the process's scheduling policy"), "{line}");
    assert!(!line.contains("SCHED_BATCH"), "{line}");
    unchanged.shutdown();
}

// --- Caps the system cannot give ---------------------------------------------------------

#[cfg(target_os = "linux")]
#[test]
fn a_thread_cap_above_what_the_system_allows_names_the_settings_to_raise() {
    capture();
    // No kernel gives 5,000,000 threads: kernel.pid_max stops at 4,194,304.
    let _server = server().endpoint(|e| e.max_channel_threads(5_000_000)).start();
    let (level, line) = wait_line(&["max_channel_threads 5000000 is more than this system allows"]);
    assert_eq!(level, Level::Warn);
    assert!(line.contains("To allow 5000000, raise"), "{line}");
    assert!(line.contains("`sysctl -w kernel.pid_max=5002048`"), "{line}");
}

#[cfg(target_os = "linux")]
#[test]
fn a_connection_cap_above_the_open_file_limit_says_what_to_raise_it_to() {
    capture();
    let _server = server().endpoint(|e| e.max_connections(20_000_000)).start();
    let (level, line) = wait_line(&["max_connections 20000000 is more than this process's open files allow"]);
    assert_eq!(level, Level::Warn);
    assert!(line.contains("To allow 20000000, raise `ulimit -n 20000256`"), "{line}");
}

#[test]
fn refused_request_framing_is_logged_at_most_about_once_a_second() {
    let server = logging_server();
    let request = "GET /socket/websocket HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx";
    for _ in 0..50 {
        let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
        std::io::Write::write_all(&mut stream, request.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    }
    let logged = wait_line(&["refusing a request", "more than one Content-Length"]);
    assert_eq!(logged.0, Level::Warn);
    let lines = lines_with(&["refusing a request", "more than one Content-Length"]).len();
    assert!(lines <= 3, "{lines} lines for 50 refusals");
}
