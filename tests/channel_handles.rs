//! Reaching channels from the rest of the program: `Endpoint::channels(topic)` lists a
//! topic's joined channels as `ChannelHandle`s, over real sockets, from the join until
//! the channel ends, whichever way it ends.

use phx_channels::client::Client;
use phx_channels::{
    CallError, CallReply, Channel, Endpoint, Handled, JoinResult, Payload, Socket, SubscriberId, UserSocket,
};
use serde_json::json;
use std::any::Any;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// Answers calls with its topic; panics on `boom`.
struct Board;

impl Channel for Board {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, _payload: Payload, _socket: &mut Socket) -> Handled {
        match event {
            "boom" => panic!("boom"),
            other => Handled::unhandled(other),
        }
    }

    fn handle_call(&mut self, _request: Box<dyn Any + Send>, socket: &mut Socket) -> CallReply {
        CallReply::reply(socket.topic().to_owned())
    }
}

fn start() -> Endpoint {
    Endpoint::builder()
        .bind("127.0.0.1:0")
        .socket("/socket", UserSocket::new().channel("board:*", |_| Board))
        .start()
        .expect("the endpoint starts")
}

fn client(endpoint: &Endpoint) -> Client {
    Client::builder(endpoint.local_addr().to_string()).timeout(WAIT).connect().expect("the client connects")
}

fn ids(endpoint: &Endpoint, topic: &str) -> Vec<SubscriberId> {
    endpoint.channels(topic).iter().map(|c| c.subscriber_id()).collect()
}

/// Joins `topic` and returns the id of the channel that join made.
fn join(endpoint: &Endpoint, client: &mut Client, topic: &str) -> SubscriberId {
    let before = ids(endpoint, topic);
    assert_eq!(client.join(topic, json!({})).unwrap().status, "ok");
    let after = ids(endpoint, topic);
    let new: Vec<_> = after.into_iter().filter(|id| !before.contains(id)).collect();
    assert_eq!(new.len(), 1, "one channel more on {topic}");
    new[0]
}

/// Waits until the channel `id` on `topic` has ended (a call to it says so), then
/// checks it is no longer listed.
fn assert_gone(endpoint: &Endpoint, topic: &str, id: SubscriberId, handle: &phx_channels::ChannelHandle) {
    assert!(matches!(handle.call::<String>("topic?", WAIT), Err(CallError::ChannelEnded)));
    assert!(!ids(endpoint, topic).contains(&id), "{id:?} is still listed on {topic}");
}

#[test]
fn the_channels_of_a_topic_are_found_and_called_from_outside() {
    let endpoint = start();
    let (mut a, mut b, mut c) = (client(&endpoint), client(&endpoint), client(&endpoint));
    join(&endpoint, &mut a, "board:1");
    join(&endpoint, &mut b, "board:1");
    join(&endpoint, &mut c, "board:2");
    let found = endpoint.channels("board:1");
    assert_eq!(found.len(), 2);
    for channel in &found {
        assert_eq!(channel.topic(), "board:1");
        assert_eq!(channel.call::<String>("topic?", WAIT).unwrap(), "board:1");
    }
    assert_eq!(endpoint.channels("board:2").len(), 1);
    assert!(endpoint.channels("board:3").is_empty());
    assert_eq!(endpoint.pubsub().channels("board:1").len(), 2);
    // A plain subscription on the topic is not a channel.
    let _listener = endpoint.subscribe("board:2");
    assert_eq!(endpoint.channels("board:2").len(), 1);
    endpoint.shutdown();
}

#[test]
fn a_channel_is_listed_until_it_leaves_crashes_or_its_connection_closes() {
    let endpoint = start();
    let topic = "board:ends";
    let (mut leaving, mut crashing, mut closing, mut staying) =
        (client(&endpoint), client(&endpoint), client(&endpoint), client(&endpoint));
    let left = join(&endpoint, &mut leaving, topic);
    let crashed = join(&endpoint, &mut crashing, topic);
    let closed = join(&endpoint, &mut closing, topic);
    let stays = join(&endpoint, &mut staying, topic);
    let handle = |id| endpoint.channels(topic).into_iter().find(|c| c.subscriber_id() == id).unwrap();
    let handles = [(left, handle(left)), (crashed, handle(crashed)), (closed, handle(closed))];

    assert_eq!(leaving.leave(topic).unwrap().status, "ok");
    assert_gone(&endpoint, topic, left, &handles[0].1);

    crashing.push_async(topic, "boom", json!({})).unwrap();
    crashing.recv_event(topic, "phx_error").unwrap();
    assert_gone(&endpoint, topic, crashed, &handles[1].1);

    closing.close().unwrap();
    assert_gone(&endpoint, topic, closed, &handles[2].1);

    assert_eq!(ids(&endpoint, topic), vec![stays]);
    endpoint.shutdown();
    assert!(endpoint.channels(topic).is_empty(), "shutdown ends every channel");
}
