//! The README's first server, word for word (`tests/readme.rs` checks it): one channel
//! that broadcasts what its clients send. `PORT=4001 cargo run --example readme`.

use phx_channels::{Channel, Endpoint, Handled, JoinResult, Payload, Socket, UserSocket};

struct Room;

impl Channel for Room {
    fn join(&mut self, _topic: &str, _payload: &Payload, _socket: &mut Socket) -> JoinResult {
        Ok(Payload::empty())
    }

    fn handle_in(&mut self, event: &str, payload: Payload, socket: &mut Socket) -> Handled {
        match event {
            "new_msg" => {
                socket.broadcast("new_msg", payload).ok();
                Handled::ok()
            }
            _ => Handled::NoReply,
        }
    }
}

fn main() -> Result<(), phx_channels::Error> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "4000".into()); // as a Phoenix app's config
    let endpoint = Endpoint::builder()
        .bind(format!("127.0.0.1:{port}"))
        .socket("/socket", UserSocket::new().channel("room:*", |_topic| Room))
        .start()?;
    endpoint.shutdown_on_signals()?; // SIGTERM or Ctrl-C: drain, then `wait` returns
    endpoint.wait();
    Ok(())
}
