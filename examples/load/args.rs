//! The command line: the usage text, `--name value` options read on demand (with
//! unknown ones refused), and the `ws://` URL of the server under test.

use crate::Res;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::time::Duration;

pub(crate) const USAGE: &str =
    "usage: load <connect|scale|echo|broadcast|raw-server|raw-echo|tcp-floor|wake-floor|longpoll|client-echo|client-connect> [options]
  connect    --url URL -n N -k K [--hold S] [--threads T] [--inflight I] [--timeout S] [--server-pid PID]
  scale      --url URL -n N -k K [--cycles C] [--rounds R] [--gap S] [--drain S] [--idle-sample S]
             [--sources 127.0.0.1,127.0.0.2,...] [--threads T] [--inflight I] [--timeout S] [--settle S]
             [--server-pid PID]
  echo       --url URL -c C --duration S [--warmup S] [--payload-bytes B] [--threads T] [--inflight K]
             [--client-poll block|spin] [--deflate off|takeover|no-takeover] [--server-pid PID]
  broadcast  --url URL -n N --count M --rate R [--payload-bytes B] [--threads T] [--drain S]
             [--deflate off|takeover|no-takeover]
             [--event broadcast|broadcast_from] [--topic T] [--server-pid PID]
             [--sub-urls URL,URL...] [--other-pids NAME=PID,...]
  raw-server --port P [--max-seconds S]
  raw-echo   --url ws://127.0.0.1:P/ -c C --duration S [--warmup S] [--payload-bytes B] [--threads T] [--inflight K]
             [--client-poll block|spin] [--server-pid PID]
  tcp-floor  --n N --count M [--frame-bytes B] [--batch K] [--rate R] [--writer-cpu C] [--reader-cpu C]
  wake-floor --threads N --rounds M [--rate R]   (under chrt -b 0 to match the server's threads)
  longpoll   --url http://127.0.0.1:P/bench/longpoll [--count M] [-n N] [--settle S] [--server-pid PID]
  client-echo     [--addr HOST:PORT] [--path /bench] [--ca PEM] -c C --duration S [--warmup S] [--payload-bytes B]
                  [--server-pid PID]   (the crate's blocking client; --ca for wss://, feature tls)
  client-connect  [--addr HOST:PORT] [--path /bench] [--ca PEM] -c C --duration S [--warmup S] [--server-pid PID]";

pub(crate) const DEFAULT_URL: &str = "ws://127.0.0.1:4807/bench/websocket";

/// `--name value`, `--name=value` or `-n value`; every option takes a value.
pub(crate) struct Args {
    values: HashMap<String, String>,
    used: RefCell<HashSet<String>>,
}

impl Args {
    pub(crate) fn parse(items: Vec<String>) -> Res<Args> {
        let mut values = HashMap::new();
        let mut items = items.into_iter();
        while let Some(item) = items.next() {
            let name = item
                .strip_prefix("--")
                .or_else(|| item.strip_prefix('-'))
                .ok_or_else(|| format!("unexpected argument {item:?}"))?;
            let (name, value) = match name.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => (name.to_owned(), items.next().ok_or_else(|| format!("--{name} needs a value"))?),
            };
            values.insert(name, value);
        }
        Ok(Args { values, used: RefCell::new(HashSet::new()) })
    }

    pub(crate) fn opt<T: FromStr>(&self, name: &str) -> Res<Option<T>>
    where
        T::Err: Display,
    {
        self.used.borrow_mut().insert(name.to_owned());
        match self.values.get(name) {
            None => Ok(None),
            Some(value) => value.parse().map(Some).map_err(|err| format!("--{name} {value:?}: {err}").into()),
        }
    }

    pub(crate) fn get<T: FromStr>(&self, name: &str, default: T) -> Res<T>
    where
        T::Err: Display,
    {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    pub(crate) fn secs(&self, name: &str, default: f64) -> Res<Duration> {
        let secs: f64 = self.get(name, default)?;
        Duration::try_from_secs_f64(secs).map_err(|err| format!("--{name}: {err}").into())
    }

    /// Fails on options the subcommand did not read.
    pub(crate) fn finish(&self) -> Res<()> {
        let used = self.used.borrow();
        let mut unknown: Vec<&String> = self.values.keys().filter(|k| !used.contains(*k)).collect();
        unknown.sort();
        match unknown.first() {
            None => Ok(()),
            Some(_) => Err(format!("unknown option(s) {unknown:?}\n{USAGE}").into()),
        }
    }
}

/// A `ws://host:port/path?query` URL. `vsn=2.0.0` is added when absent.
pub(crate) struct WsUrl {
    pub(crate) addr: SocketAddr,
    pub(crate) host: String,
    pub(crate) path: String,
    /// The permessage-deflate offer the connections make (`--deflate`), if any.
    pub(crate) deflate: Option<Deflate>,
}

/// How the connections offer permessage-deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Deflate {
    /// As browsers do (`client_max_window_bits`): the client keeps its compressor's
    /// window from message to message, so each connection has a compressor of its own.
    Takeover,
    /// With `client_no_context_takeover`: one compressor per client thread, reset
    /// between messages.
    NoTakeover,
}

impl Deflate {
    /// `--deflate off|takeover|no-takeover` (default off).
    pub(crate) fn from_args(args: &Args) -> Res<Option<Deflate>> {
        match args.get("deflate", "off".to_owned())?.as_str() {
            "off" => Ok(None),
            "takeover" => Ok(Some(Deflate::Takeover)),
            "no-takeover" => Ok(Some(Deflate::NoTakeover)),
            other => Err(format!("--deflate {other:?}: off, takeover or no-takeover").into()),
        }
    }

    pub(crate) fn offer(self) -> &'static str {
        match self {
            Deflate::Takeover => "permessage-deflate; client_max_window_bits",
            Deflate::NoTakeover => "permessage-deflate; client_no_context_takeover",
        }
    }
}

impl WsUrl {
    pub(crate) fn parse(url: &str) -> Res<WsUrl> {
        let rest = url.strip_prefix("ws://").ok_or("only ws:// URLs are supported")?;
        let (host, path) = match rest.find('/') {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let addr = host.to_socket_addrs()?.next().ok_or_else(|| format!("cannot resolve {host}"))?;
        let mut path = path.to_owned();
        if !path.contains("vsn=") {
            path.push(if path.contains('?') { '&' } else { '?' });
            path.push_str("vsn=2.0.0");
        }
        Ok(WsUrl { addr, host: host.to_owned(), path, deflate: None })
    }
}

pub(crate) fn args_url(url: &WsUrl) -> String {
    format!("ws://{}{}", url.host, url.path)
}
