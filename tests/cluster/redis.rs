//! The Redis servers the cluster tests use: the one `scripts/test.sh` starts
//! (`PHX_TEST_REDIS_URL`), shared by most tests, and servers of a test's own, which it
//! may stop and start again.

use crate::nodes::send_signal;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The shared Redis's URL. When `PHX_TEST_REDIS_URL` is unset the test is skipped with
/// a loud note, unless `PHX_REQUIRE_REDIS=1`, which makes it fail.
pub fn shared_redis(test: &str) -> Option<String> {
    if let Ok(url) = std::env::var("PHX_TEST_REDIS_URL") {
        return Some(url);
    }
    assert!(
        std::env::var("PHX_REQUIRE_REDIS").as_deref() != Ok("1"),
        "PHX_REQUIRE_REDIS=1 but PHX_TEST_REDIS_URL is unset: {test} needs a Redis (scripts/test.sh starts one)"
    );
    eprintln!(
        "\n!!!!! SKIPPED {test}: no Redis. Set PHX_TEST_REDIS_URL=redis://127.0.0.1:PORT/ \
         (scripts/test.sh starts one) to run the cluster tests. !!!!!\n"
    );
    None
}

/// A TCP port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `redis-server` of one test's own, on a loopback port it keeps across restarts.
pub struct OwnRedis {
    pub port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl OwnRedis {
    /// Starts `redis-server` (from PATH) on a free port.
    pub fn start() -> OwnRedis {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("phx-cluster-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut redis = OwnRedis { port, dir, child: None };
        redis.resume();
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts the server again on the same port.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (apt-get install redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not listen on {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server's process without closing anything (SIGSTOP): its clients'
    /// connections stay open and go silent, as with a hung server or a cut network.
    pub fn freeze(&self) {
        assert!(send_signal(self.child.as_ref().expect("running"), "-STOP"));
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        assert!(send_signal(self.child.as_ref().expect("running"), "-CONT"));
    }

    /// Kills the server (its clients see their connections drop).
    pub fn halt(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.halt();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
