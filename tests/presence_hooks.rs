//! Presence features beyond tracking, tested in memory: the `presence_fetch` hook
//! (presences enriched once per key before they go out, in `presence_state`, diffs and
//! `get_by_key`), `get_by_key`, presences tracked from code that is not a channel, and
//! the `presence_handle_metas` callback.

mod common;

use common::*;
use phx_channels::presence::{PRESENCE_DIFF, PRESENCE_STATE, Presences};
use phx_channels::testing::{self, TestChannel};
use phx_channels::{Endpoint, EndpointBuilder};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An in-memory endpoint with the lobby socket (see `common`).
fn start(builder: EndpointBuilder) -> Endpoint {
    testing::endpoint(builder.socket("/socket", lobby_socket())).unwrap()
}

fn join(endpoint: &Endpoint, user: &str) -> TestChannel {
    let socket = testing::connect(endpoint, "/socket", json!({"user": user})).unwrap();
    socket.set_timeouts(TEST_TIMEOUTS);
    socket.join("lobby", json!({})).unwrap().1
}

/// A fetch that names every key and records the keys of each call.
fn naming_fetch(calls: Arc<Mutex<Vec<Vec<String>>>>) -> impl Fn(&str, &mut Presences) + Send + Sync + 'static {
    move |_topic, presences| {
        calls.lock().unwrap().push(presences.keys().cloned().collect());
        for (key, presence) in presences.iter_mut() {
            presence["name"] = json!(key.to_uppercase());
        }
    }
}

fn keys(value: &Value) -> Vec<String> {
    value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

#[test]
fn fetch_enriches_presence_state_and_diffs_once_per_key() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let endpoint = start(Endpoint::builder().presence_fetch(naming_fetch(calls.clone())));
    let ada = join(&endpoint, "ada");
    ada.assert_push(PRESENCE_STATE);
    let diff = ada.assert_push(PRESENCE_DIFF);
    assert_eq!(diff.get("joins").unwrap()["ada"]["name"], "ADA", "{diff:?}");
    assert_eq!(diff.get("joins").unwrap()["ada"]["metas"][0]["device"], "web");

    let grace = join(&endpoint, "grace");
    let state = grace.assert_push(PRESENCE_STATE);
    assert_eq!(state.get("ada").unwrap()["name"], "ADA", "{state:?}");
    let diff = ada.assert_push(PRESENCE_DIFF);
    assert_eq!(diff.get("joins").unwrap()["grace"]["name"], "GRACE");
    grace.assert_push(PRESENCE_DIFF); // the same diff, fetched once for both

    grace.close();
    let diff = ada.assert_push(PRESENCE_DIFF);
    assert_eq!(diff.get("leaves").unwrap()["grace"]["name"], "GRACE", "{diff:?}");

    // One call per outgoing message with presences in it: ada's join, grace's state,
    // grace's join, grace's leave (ada's state was empty: nothing to fetch). Never one
    // per client.
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls, [vec!["ada"], vec!["ada"], vec!["grace"], vec!["grace"]], "{calls:?}");
    endpoint.shutdown();
}

#[test]
fn get_by_key_returns_one_keys_presence_fetched() {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let endpoint = start(Endpoint::builder().presence_fetch(naming_fetch(calls.clone())));
    let presence = endpoint.presence();
    let _phone = presence.track_external("lobby", "ada", json!({"device": "phone"})).unwrap();
    let _laptop = presence.track_external("lobby", "ada", json!({"device": "laptop"})).unwrap();
    let _other = presence.track_external("lobby", "bob", json!({})).unwrap();
    let ada = presence.get_by_key("lobby", "ada").unwrap();
    assert_eq!(ada["name"], "ADA");
    let devices: Vec<&Value> = ada["metas"].as_array().unwrap().iter().map(|m| &m["device"]).collect();
    assert_eq!(devices, [&json!("phone"), &json!("laptop")]);
    assert_eq!(calls.lock().unwrap().last().unwrap(), &["ada"], "fetched for that key only");
    assert_eq!(presence.get_by_key("lobby", "carol"), None);
    assert_eq!(presence.get_by_key("elsewhere", "ada"), None);
    endpoint.shutdown();
}

#[test]
fn a_presence_tracked_outside_channels_is_seen_by_clients_and_goes_when_dropped() {
    let endpoint = start(Endpoint::builder());
    let ada = join(&endpoint, "ada");
    ada.assert_push(PRESENCE_STATE);
    ada.assert_push(PRESENCE_DIFF);
    let bot = endpoint.presence().track_external("lobby", "bot", json!({"status": "idle"})).unwrap();
    assert_eq!((bot.topic(), bot.key()), ("lobby", "bot"));
    let diff = ada.assert_push(PRESENCE_DIFF);
    assert_eq!(diff.get("joins").unwrap()["bot"]["metas"][0]["status"], "idle");
    bot.update(json!({"status": "busy"})).unwrap();
    let diff = ada.assert_push(PRESENCE_DIFF);
    assert_eq!(diff.get("joins").unwrap()["bot"]["metas"][0]["status"], "busy");
    assert_eq!(diff.get("leaves").unwrap()["bot"]["metas"][0]["status"], "idle");
    drop(bot);
    let diff = ada.assert_push(PRESENCE_DIFF);
    assert_eq!(keys(diff.get("leaves").unwrap()), ["bot"]);
    assert_eq!(keys(&endpoint.presence().list("lobby")), ["ada"]);

    let explicit = endpoint.presence().track_external("lobby", "job", json!({})).unwrap();
    assert!(endpoint.presence().track_external("lobby", "job", json!([])).is_err(), "metas are objects");
    explicit.untrack();
    assert_eq!(keys(&endpoint.presence().list("lobby")), ["ada"]);
    endpoint.shutdown();
}

/// One `handle_metas` call: topic, join keys, leave keys, keys present, thread name.
type Seen = (String, Vec<String>, Vec<String>, Vec<String>, String);

#[test]
fn handle_metas_sees_every_change_on_the_presence_thread() {
    let (sender, seen) = crossbeam_channel::unbounded::<Seen>();
    let builder = Endpoint::builder()
        .presence_fetch(|_, presences| {
            for presence in presences.values_mut() {
                presence["fetched"] = json!(true);
            }
        })
        .presence_handle_metas(move |change| {
            assert!(change.joins.values().all(|p| p["fetched"] == json!(true)), "joins are fetched");
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            let keys = |m: &Presences| m.keys().cloned().collect::<Vec<_>>();
            let _ = sender.send((
                change.topic.to_owned(),
                keys(change.joins),
                keys(change.leaves),
                keys(change.presences),
                thread,
            ));
        });
    let endpoint = start(builder);
    let next = || seen.recv_timeout(Duration::from_secs(5)).expect("a handle_metas call");
    let ada = join(&endpoint, "ada");
    let (topic, joins, leaves, present, thread) = next();
    assert_eq!(
        (topic.as_str(), joins, leaves, present),
        ("lobby", vec!["ada".to_owned()], vec![], vec!["ada".to_owned()])
    );
    assert_eq!(thread, "phx-presence");
    let bot = endpoint.presence().track_external("lobby", "bot", json!({})).unwrap();
    assert_eq!(next().1, ["bot"]);
    drop(bot);
    let (_, joins, leaves, present, _) = next();
    assert_eq!((joins, leaves, present), (vec![], vec!["bot".to_owned()], vec!["ada".to_owned()]));
    ada.close();
    let (_, _, leaves, present, _) = next();
    assert_eq!((leaves, present), (vec!["ada".to_owned()], vec![]));
    endpoint.shutdown();
}

#[test]
fn panicking_callbacks_do_not_stop_presence() {
    let builder = Endpoint::builder()
        .presence_fetch(|_, _| panic!("fetch panics on purpose"))
        .presence_handle_metas(|_| panic!("handle_metas panics on purpose"));
    let endpoint = start(builder);
    let ada = join(&endpoint, "ada");
    ada.assert_push(PRESENCE_STATE);
    let diff = ada.assert_push(PRESENCE_DIFF);
    assert!(diff.get("joins").unwrap().get("ada").is_some(), "the diff went out unfetched");
    let _bot = endpoint.presence().track_external("lobby", "bot", json!({})).unwrap();
    ada.assert_push(PRESENCE_DIFF);
    endpoint.shutdown();
}
