//! `Client::builder` takes a socket's URL as the JS client does (`ws://`, `wss://`,
//! path and query), or a bare `host:port`; an address it cannot use is a clear error.

mod common;

use common::*;
use phx_channels::Serializer;
use phx_channels::client::{Client, ClientError, UrlError};
use serde_json::json;

#[test]
fn a_ws_url_connects_with_its_path_and_params() {
    let server = start();
    let port = server.endpoint.local_addr().port();
    let mut client = Client::builder(format!("ws://127.0.0.1:{port}/socket")).connect().unwrap();
    assert_eq!(client.serializer(), Serializer::V2);
    assert_eq!(client.join("room:url", json!({})).unwrap().status, "ok");

    // The path (with or without /websocket) and the query, vsn included, come from the URL.
    let url = format!("ws://localhost:{port}/ws/42/websocket?vsn=1.0.0&token=a%2Bb");
    let mut client = Client::builder(url).connect().unwrap();
    assert_eq!(client.serializer(), Serializer::V1);
    let reply = client.join("room:assigns", json!({"mode": "assigns"})).unwrap();
    assert_eq!(json_of(&reply.response)["params"], json!({"user_id": "42", "token": "a+b", "vsn": "1.0.0"}));

    // A bare address, as before.
    assert!(Client::builder(server.addr.clone()).connect().is_ok());
}

fn invalid(result: Result<Client, ClientError>) -> UrlError {
    match result {
        Err(ClientError::InvalidUrl(err)) => err,
        Err(other) => panic!("expected an invalid URL, got {other}"),
        Ok(_) => panic!("expected an invalid URL, it connected"),
    }
}

#[test]
fn an_address_that_cannot_be_used_says_why() {
    let server = start();
    let port = server.endpoint.local_addr().port();
    let http = invalid(Client::builder(format!("http://127.0.0.1:{port}/socket")).connect());
    assert_eq!(http, UrlError::Scheme("http".into()));
    assert!(ClientError::InvalidUrl(http).to_string().contains("give ws://host:port/path"));
    assert_eq!(invalid(Client::builder("ws://:4000/socket").connect()), UrlError::NoHost);
    assert_eq!(invalid(Client::builder("ws://127.0.0.1:port/socket").connect()), UrlError::Port("port".into()));
    let wss = invalid(Client::builder(format!("wss://127.0.0.1:{port}/socket")).connect());
    #[cfg(feature = "tls")]
    assert_eq!(wss, UrlError::NeedsTlsRoots);
    #[cfg(not(feature = "tls"))]
    assert_eq!(wss, UrlError::NeedsTlsFeature);
}
