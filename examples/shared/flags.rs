//! The command line the examples share: `--port P`, and `--redis URL` `--node NAME` to
//! join a cluster. `--redis` needs the crate's `redis` feature; a build without it
//! refuses the flag with a message naming the feature.

use phx_channels::{Endpoint, EndpointBuilder};
use std::time::Duration;

/// What the command line said.
pub struct Flags {
    pub port: u16,
    redis: Option<String>,
    node: Option<String>,
}

impl Flags {
    /// Reads the command line of `program`, whose port is `default_port` unless told.
    pub fn parse(program: &str, default_port: u16) -> Result<Flags, String> {
        let mut flags = Flags { port: default_port, redis: None, node: None };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--port" => flags.port = value()?.parse().map_err(|err| format!("--port: {err}"))?,
                "--redis" => flags.redis = Some(value()?),
                "--node" => flags.node = Some(value()?),
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: {program} [--port PORT] [--redis URL [--node NAME]]"
                    ));
                }
            }
        }
        Ok(flags)
    }

    /// An endpoint builder on 127.0.0.1:port, with the node name and the cluster the
    /// flags give; in a cluster, a silent node is taken for gone after `down_after`.
    pub fn endpoint(self, down_after: Duration) -> Result<EndpointBuilder, String> {
        let mut builder = Endpoint::builder().bind(format!("127.0.0.1:{}", self.port));
        if let Some(node) = self.node {
            builder = builder.node_name(node);
        }
        join(builder, self.redis, down_after)
    }
}

#[cfg(feature = "redis")]
fn join(builder: EndpointBuilder, url: Option<String>, down_after: Duration) -> Result<EndpointBuilder, String> {
    Ok(match url {
        Some(url) => builder.redis(url).node_down_after(down_after),
        None => builder,
    })
}

#[cfg(not(feature = "redis"))]
fn join(builder: EndpointBuilder, url: Option<String>, _down_after: Duration) -> Result<EndpointBuilder, String> {
    match url {
        Some(_) => {
            Err("--redis needs the cargo feature `redis`: build with --features redis (or --all-features)".into())
        }
        None => Ok(builder),
    }
}
