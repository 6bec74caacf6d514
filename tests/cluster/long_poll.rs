//! Long-poll across nodes, as behind a round-robin load balancer: a session opened on
//! one node is polled and posted to through the other, which forwards each request to
//! the session's node over the cluster.

use crate::lp::{LongPoll, v2};
use crate::nodes::{Node, unique};
use crate::redis::shared_redis;
use crate::two_nodes;
use phx_channels::Payload;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The bench socket's long-poll path (no origin check), V2.
const TARGET: &str = "/bench/longpoll?vsn=2.0.0";
/// The fixture's long-poll window.
const WINDOW: Duration = Duration::from_secs(2);

/// A long-poll client with a session opened on `node`.
fn session_on(node: &Node) -> LongPoll {
    let mut lp = LongPoll::new(&node.addr, TARGET);
    lp.connect();
    lp
}

/// Sends the client's next requests to `node`.
fn via<'a>(lp: &'a mut LongPoll, node: &Node) -> &'a mut LongPoll {
    lp.addr = node.addr.clone();
    lp
}

#[test]
fn a_session_opened_on_one_node_is_used_through_the_other() {
    let Some((_, a, b)) = two_nodes("a_session_opened_on_one_node_is_used_through_the_other", "lp") else { return };
    let mut lp = session_on(&a);
    let topic = format!("bench:{}", unique("lp"));
    // Join through b: the POST and the poll that gets the reply both cross to a.
    let reply = via(&mut lp, &b).join(&topic, "1");
    assert_eq!(reply[4], json!({"status": "ok", "response": {}}), "{reply}");
    // Push through a, reply polled through b, and the other way.
    for (post, poll, msg_ref) in [(&a, &b, "2"), (&b, &a, "3")] {
        let frame = v2(Some("1"), msg_ref, &topic, "echo", json!({"ref": msg_ref}));
        assert_eq!(via(&mut lp, post).post(&frame), json!({"status": 200}));
        let seen = via(&mut lp, poll).messages_until(|m| m[1] == msg_ref);
        let reply = seen.iter().find(|m| m[1] == msg_ref).unwrap();
        assert_eq!(reply[4], json!({"status": "ok", "response": {"ref": msg_ref}}), "{reply}");
    }
    // Broadcasts both ways, with a WebSocket client on each node.
    let (mut on_a, mut on_b) = (a.bench(Duration::from_secs(5)), b.bench(Duration::from_secs(5)));
    on_a.join(&topic, json!({})).unwrap();
    on_b.join(&topic, json!({})).unwrap();
    let frame = v2(Some("1"), "4", &topic, "broadcast", json!({"from": "long-poll"}));
    assert_eq!(via(&mut lp, &b).post(&frame), json!({"status": 200}));
    for client in [&mut on_a, &mut on_b] {
        let msg = client.recv_event(&topic, "broadcast").unwrap();
        assert_eq!(msg.payload, Payload::Json(json!({"from": "long-poll"})));
    }
    let broadcasts = |lp: &mut LongPoll, last: Value| {
        let seen = lp.messages_until(|m| m[3] == "broadcast" && m[4] == last);
        seen.into_iter().filter(|m| m[3] == "broadcast").map(|m| m[4].clone()).collect::<Vec<_>>()
    };
    assert_eq!(broadcasts(via(&mut lp, &a), json!({"from": "long-poll"})), [json!({"from": "long-poll"})]);
    on_b.push(&topic, "broadcast", json!({"from": "b"})).unwrap();
    assert_eq!(broadcasts(via(&mut lp, &b), json!({"from": "b"})), [json!({"from": "b"})]);
    on_a.push(&topic, "broadcast", json!({"from": "a"})).unwrap();
    assert_eq!(broadcasts(via(&mut lp, &b), json!({"from": "a"})), [json!({"from": "a"})], "each once");

    // Presence: the long-poll member, joined through b, and a WebSocket member on b see
    // each other.
    let presence = format!("presence:{}", unique("lp"));
    let mut watcher = b.bench(Duration::from_secs(5));
    watcher.join(&presence, json!({"user": "watcher"})).unwrap();
    let frame = v2(Some("5"), "5", &presence, "phx_join", json!({"user": "lp"}));
    assert_eq!(via(&mut lp, &b).post(&frame), json!({"status": 200}));
    // The watcher joined on b: a's list has it in the state, or a diff brings it when
    // the replication arrives after the join.
    let has_watcher = |m: &Value| {
        m[2] == presence.as_str()
            && ((m[3] == "presence_state" && m[4].get("watcher").is_some())
                || (m[3] == "presence_diff" && m[4]["joins"].get("watcher").is_some()))
    };
    via(&mut lp, &b).messages_until(has_watcher);
    loop {
        let diff = watcher.recv_event(&presence, "presence_diff").unwrap().payload;
        if diff.as_json().unwrap()["joins"].get("lp").is_some() {
            break;
        }
    }
}

#[test]
fn a_forwarded_poll_is_held_for_the_window_and_a_newer_poll_answers_it() {
    let Some((_, a, b)) = two_nodes("a_forwarded_poll_is_held_for_the_window", "lpheld") else { return };
    let mut lp = session_on(&a);
    let started = Instant::now();
    let body = via(&mut lp, &b).get();
    let held = started.elapsed();
    assert_eq!(body["status"], 204, "{body}");
    assert_eq!(body["token"], json!(lp.token), "the same session");
    assert!(held >= WINDOW - Duration::from_millis(300), "held {held:?}, not the window");
    eprintln!("a forwarded poll with no output was held {held:?} (window {WINDOW:?})");
    // A newer poll answers the one held before it, whichever node each came through;
    // output then goes to the newer one.
    for (older, newer, msg_ref) in [(&b, &a, "hb1"), (&a, &b, "hb2")] {
        let first = via(&mut lp, older).poll_in_background();
        let second = via(&mut lp, newer).poll_in_background();
        let first = first.join().unwrap();
        assert_eq!(first["status"], 204, "the older poll: {first}");
        let heartbeat = v2(None, msg_ref, "phoenix", "heartbeat", json!({}));
        assert_eq!(via(&mut lp, older).post(&heartbeat), json!({"status": 200}));
        let second = second.join().unwrap();
        assert_eq!(second["status"], 200, "the newer poll: {second}");
        let reply: Value = serde_json::from_str(second["messages"][0].as_str().unwrap()).unwrap();
        assert_eq!((&reply[1], &reply[3]), (&json!(msg_ref), &json!("phx_reply")), "{second}");
    }
}

#[test]
fn a_gone_session_answers_410_through_another_node() {
    let Some((_, a, b)) = two_nodes("a_gone_session_answers_410_through_another_node", "lpgone") else { return };
    let mut lp = session_on(&a);
    let old = lp.token.clone();
    // The session ends on a once its client stops polling for 1.5 windows; POSTs
    // through b reach it until then.
    let deadline = Instant::now() + WINDOW * 4;
    let mut n = 0;
    let gone = loop {
        n += 1;
        let status = via(&mut lp, &b).post(&v2(None, &n.to_string(), "phoenix", "heartbeat", json!({})));
        if status != json!({"status": 200}) {
            break status;
        }
        assert!(Instant::now() < deadline, "the abandoned session is still there");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(gone, json!({"status": 410}));
    // A poll with the gone session's token opens a new session, here on b.
    let body = lp.get();
    assert_eq!(body["status"], 410, "{body}");
    assert_ne!(lp.token, old);
    let reply = via(&mut lp, &a).join(&format!("bench:{}", unique("lpgone")), "1");
    assert_eq!(reply[4]["status"], "ok", "the new session works through a: {reply}");
}

#[test]
fn a_killed_owner_node_answers_410_through_the_other_in_bounded_time() {
    let Some(redis) = shared_redis("a_killed_owner_node_answers_410") else { return };
    let (mut a, b) = (Node::start(&redis, &unique("lpkill-a")), Node::start(&redis, &unique("lpkill-b")));
    let mut lp = session_on(&a);
    let old = lp.token.clone();
    let held = via(&mut lp, &b).poll_in_background();
    let killed = Instant::now();
    a.kill();
    // The poll held for b on a is never answered by a: b gives up after the window and
    // its margin, and takes the session for gone (410, with a new session's token).
    let body = held.join().unwrap();
    let took = killed.elapsed();
    assert_eq!(body["status"], 410, "{body}");
    assert_ne!(body["token"], json!(old));
    assert!(took < WINDOW + Duration::from_secs(4), "answered {took:?} after the kill");
    eprintln!("a poll forwarded to a killed node was answered 410 {took:?} after the kill");
    // A POST for the dead node's session: 410, at once once a is known to be gone.
    assert_eq!(lp.post(&v2(None, "1", "phoenix", "heartbeat", json!({}))), json!({"status": 410}));
    std::thread::sleep(crate::DOWN_AFTER + Duration::from_secs(1));
    let started = Instant::now();
    assert_eq!(lp.post(&v2(None, "2", "phoenix", "heartbeat", json!({}))), json!({"status": 410}));
    assert!(started.elapsed() < Duration::from_secs(1), "answered after {:?}", started.elapsed());
}

/// The median and the 90th percentile of `samples`.
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 9 / 10])
}

#[test]
fn every_echo_through_either_node_is_answered_and_timed() {
    let Some((_, a, b)) = two_nodes("every_echo_through_either_node_is_answered_and_timed", "lprtt") else { return };
    let topic = format!("bench:{}", unique("lprtt"));
    let mut lp = session_on(&a);
    assert_eq!(lp.join(&topic, "1")[4]["status"], "ok");
    let measure = |lp: &mut LongPoll, node: &Node, label: &str| {
        via(lp, node);
        let mut samples = Vec::new();
        for i in 0..200 {
            let msg_ref = format!("{label}{i}");
            let started = Instant::now();
            let frame = v2(Some("1"), &msg_ref, &topic, "echo", json!({"i": i}));
            assert_eq!(lp.post(&frame), json!({"status": 200}));
            let seen = lp.messages_until(|m| m[1] == msg_ref.as_str());
            samples.push(started.elapsed());
            let reply = seen.iter().find(|m| m[1] == msg_ref.as_str()).unwrap();
            assert_eq!(reply[4]["response"], json!({"i": i}));
        }
        let (p50, p90) = percentiles(&mut samples);
        eprintln!("long-poll echo (a POST, then a poll for the reply) through {label}: p50 {p50:?}, p90 {p90:?}");
    };
    measure(&mut lp, &a, "the session's node");
    measure(&mut lp, &b, "another node");
}
