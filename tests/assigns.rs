//! Typed assigns: `connect` stores serde values, `join` reads them back as types
//! (`Socket::assign_as`, `assigns_as`), and what is missing or of another type is an
//! error that names the key.

use phx_channels::testing::{self, JoinError};
use phx_channels::{Assigns, Channel, Endpoint, JoinResult, Payload, Socket, TypedAssigns, UserSocket};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
struct User {
    id: u64,
    name: String,
}

/// The assigns a join reads as a whole.
#[derive(Deserialize)]
struct Session {
    user: User,
    role: String,
}

struct Board;

impl Channel for Board {
    fn join(&mut self, topic: &str, _payload: &Payload, socket: &mut Socket) -> JoinResult {
        let reply = match topic {
            "board:one" => socket.assign_as::<User>("user").map(|user| json!({"hello": user.name})),
            "board:all" => socket.assigns_as::<Session>().map(|s| json!({"hello": s.user.name, "role": s.role})),
            _ => socket.assign_as::<u64>("user").map(|id| json!({"id": id})),
        };
        match reply {
            Ok(reply) => {
                socket.assign_serialized("joined", &vec![topic.to_owned()]).expect("a list is JSON");
                Ok(reply.into())
            }
            Err(err) => Err(json!({"reason": err.to_string()}).into()),
        }
    }
}

fn endpoint() -> Endpoint {
    let socket = UserSocket::new()
        .connect(|params, _info| {
            let mut assigns = Assigns::new();
            let name = params.get("name").and_then(|n| n.as_str()).unwrap_or("anon");
            assigns.insert_as("user", &User { id: 7, name: name.to_owned() }).expect("a struct is JSON");
            if params.contains_key("role") {
                assigns.insert_as("role", "admin").expect("a string is JSON");
            }
            Ok(assigns)
        })
        .channel("board:*", |_| Board);
    testing::endpoint(Endpoint::builder().socket("/socket", socket)).unwrap()
}

#[test]
fn a_join_reads_the_assigns_connect_stored_as_types() {
    let endpoint = endpoint();
    let socket = testing::connect(&endpoint, "/socket", json!({"name": "ada", "role": "x"})).unwrap();
    let (reply, _) = socket.join("board:one", json!({})).unwrap();
    assert_eq!(reply, json!({"hello": "ada"}).into());
    let (reply, _) = socket.join("board:all", json!({})).unwrap();
    assert_eq!(reply, json!({"hello": "ada", "role": "admin"}).into());
}

#[test]
fn a_missing_or_mistyped_assign_is_an_error_naming_the_key() {
    let endpoint = endpoint();
    let socket = testing::connect(&endpoint, "/socket", json!({"name": "ada"})).unwrap();
    // `role` was not stored: the whole-map read says which field is missing.
    let Err(JoinError::Refused(reason)) = socket.join("board:all", json!({})) else { panic!("joined") };
    let reason = reason.get("reason").and_then(|r| r.as_str()).unwrap().to_owned();
    assert!(reason.contains("missing field `role`"), "{reason}");
    // `user` is an object, not a number.
    let Err(JoinError::Refused(reason)) = socket.join("board:num", json!({})) else { panic!("joined") };
    let reason = reason.get("reason").and_then(|r| r.as_str()).unwrap().to_owned();
    assert!(reason.starts_with("assign \"user\" as u64: invalid type: map"), "{reason}");

    let assigns = Assigns::new();
    let missing = assigns.get_as::<u64>("user_id").unwrap_err();
    assert_eq!(missing.to_string(), "no assign \"user_id\"");
    assert!(std::error::Error::source(&missing).is_none());
}
