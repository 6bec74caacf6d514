//! Nodes of a test cluster: parity fixture processes (`examples/parity.rs` built with
//! the `redis` feature, `--redis URL --node NAME`), and clients of them.

use phx_channels::client::{Client, ClientError};
use phx_channels::message::{Message, Reply};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A name no other test (or run) uses, for nodes and topics: `tag` plus this process's id.
pub fn unique(tag: &str) -> String {
    format!("{tag}-{}", std::process::id())
}

/// The parity binary: `PHX_PARITY_BIN`, or `examples/parity` next to this test's
/// build directory (`cargo build --features redis --example parity` makes it).
fn parity_bin() -> PathBuf {
    if let Ok(path) = std::env::var("PHX_PARITY_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("examples").join("parity");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --features redis --example parity`",
        bin.display()
    );
    bin
}

/// One fixture process in the cluster. Dropping it kills it.
pub struct Node {
    pub name: String,
    pub addr: String,
    child: Child,
    /// Kept open: the fixture may print more.
    _stdout: BufReader<ChildStdout>,
    log: PathBuf,
}

impl Node {
    /// Starts node `name` on `redis` and waits until it listens (which it does once
    /// it is subscribed, or has failed to subscribe).
    pub fn start(redis: &str, name: &str) -> Node {
        let log = std::env::temp_dir().join(format!("phx-cluster-{name}.log"));
        let mut child = Command::new(parity_bin())
            .args(["--port", "0", "--redis", redis, "--node", name])
            .env("RUST_LOG", "warn,phx_channels::cluster=info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("the parity fixture starts");
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let read = stdout.read_line(&mut line);
        let addr = line.split_whitespace().nth(4).filter(|_| read.is_ok_and(|n| n > 0)).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("node {name} did not start: {line:?}; its log:\n{}", std::fs::read_to_string(&log).unwrap())
        });
        Node { name: name.to_owned(), addr: addr.to_owned(), child, _stdout: stdout, log }
    }

    /// A V2 client of the bench socket (no origin check, 60 s idle timeout); each wait
    /// takes at most `timeout`.
    pub fn bench(&self, timeout: Duration) -> Client {
        Client::builder(&self.addr).path("/bench").timeout(timeout).connect().unwrap()
    }

    /// A V2 client of the user socket, with `user_id` as its socket id. That socket
    /// closes a connection silent for 200 ms, so the client waits 50 ms at a time and
    /// the helpers below send heartbeats between waits.
    pub fn user(&self, user_id: &str) -> Client {
        let connect = || {
            Client::builder(&self.addr)
                .path("/ws")
                .param("user_id", user_id)
                .timeout(Duration::from_millis(50))
                .connect()
        };
        let mut tries = 0;
        loop {
            tries += 1;
            match connect() {
                Ok(client) => return client,
                Err(ClientError::Timeout) if tries < 20 => {}
                Err(err) => panic!("connecting to {}: {err}", self.name),
            }
        }
    }

    /// Stops the process without ending it (SIGSTOP), as a long pause or a cut network
    /// would: it neither sends nor reads until [`thaw`](Node::thaw).
    pub fn freeze(&self) {
        assert!(send_signal(&self.child, "-STOP"), "{} is not running", self.name);
    }

    /// Lets a frozen node go on (SIGCONT).
    pub fn thaw(&self) {
        assert!(send_signal(&self.child, "-CONT"), "{} is not running", self.name);
    }

    /// Kills the process with SIGKILL, as a crash would end it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// What the node logged (its stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- log of node {} ---\n{}", self.name, self.log());
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits up to `within` for `event` on `topic`, sending heartbeats between tries, so
/// that a client of the user socket (200 ms idle timeout) stays connected.
pub fn keep_waiting(client: &mut Client, topic: &str, event: &str, within: Duration) -> Message {
    let deadline = Instant::now() + within;
    loop {
        match client.recv_event(topic, event) {
            Ok(msg) => return msg,
            Err(ClientError::Timeout) if Instant::now() < deadline => {
                let _ = client.heartbeat();
            }
            Err(err) => panic!("waiting for {event} on {topic}: {err}"),
        }
    }
}

/// Sends `signal` (`-STOP`, `-CONT`) to a child process with kill(1); returns whether
/// it was delivered (not to a process already gone).
pub fn send_signal(child: &Child, signal: &str) -> bool {
    let status = Command::new("kill").args([signal, &child.id().to_string()]).stderr(Stdio::null()).status();
    status.is_ok_and(|s| s.success())
}

/// Joins `topic` on a client of the user socket (see [`Node::user`]).
pub fn join_keeping_alive(client: &mut Client, topic: &str, payload: Value) {
    let reply = match client.join(topic, payload) {
        Ok(reply) => reply,
        Err(ClientError::Timeout) => {
            let join_ref = client.join_ref(topic).expect("a join ref").to_owned();
            keep_waiting_reply(client, &join_ref, Duration::from_secs(5))
        }
        Err(err) => panic!("joining {topic}: {err}"),
    };
    assert_eq!(reply.status, "ok", "joining {topic}: {reply:?}");
}

/// Pushes `event` on a client of the user socket and waits for the reply.
pub fn push_keeping_alive(client: &mut Client, topic: &str, event: &str, payload: Value) -> Reply {
    let msg_ref = client.push_async(topic, event, payload).unwrap();
    keep_waiting_reply(client, &msg_ref, Duration::from_secs(5))
}

fn keep_waiting_reply(client: &mut Client, msg_ref: &str, within: Duration) -> Reply {
    let deadline = Instant::now() + within;
    loop {
        match client.wait_reply(msg_ref) {
            Ok(reply) => return reply,
            Err(ClientError::Timeout) if Instant::now() < deadline => {
                let _ = client.heartbeat();
            }
            Err(err) => panic!("waiting for reply {msg_ref}: {err}"),
        }
    }
}

/// Waits up to `within` for the server to close the connection (heartbeats between
/// tries); returns the close code.
pub fn keep_waiting_close(client: &mut Client, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    loop {
        match client.wait_close() {
            Ok(close) => return close.map(|(code, _)| code),
            Err(ClientError::Timeout) if Instant::now() < deadline => {
                let _ = client.heartbeat();
            }
            Err(err) => panic!("waiting for the connection to close: {err}"),
        }
    }
}
