//! The command line the examples share: `--port P`; `--redis URL` `--node NAME` to join
//! a cluster; `--tls-cert PEM` `--tls-key PEM` to serve TLS only. `--redis` needs the
//! crate's `redis` feature and the TLS flags its `tls` feature; a build without the
//! feature refuses the flag with a message naming it. `--compress`: the program's sockets
//! accept permessage-deflate.

use phx_channels::{Endpoint, EndpointBuilder};
use std::time::Duration;

/// What the command line said.
pub struct Flags {
    pub port: u16,
    redis: Option<String>,
    node: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    /// The sockets accept permessage-deflate (`UserSocket::compress`).
    pub compress: bool,
}

impl Flags {
    /// Reads the command line of `program`, whose port is `default_port` unless told.
    pub fn parse(program: &str, default_port: u16) -> Result<Flags, String> {
        let mut flags =
            Flags { port: default_port, redis: None, node: None, tls_cert: None, tls_key: None, compress: false };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().ok_or(format!("{arg} needs a value"));
            match arg.as_str() {
                "--port" => flags.port = value()?.parse().map_err(|err| format!("--port: {err}"))?,
                "--redis" => flags.redis = Some(value()?),
                "--node" => flags.node = Some(value()?),
                "--tls-cert" => flags.tls_cert = Some(value()?),
                "--tls-key" => flags.tls_key = Some(value()?),
                "--compress" => flags.compress = true,
                other => {
                    return Err(format!(
                        "unknown argument {other:?}; usage: {program} [--port PORT] [--redis URL [--node NAME]] \
                         [--tls-cert PEM --tls-key PEM] [--compress]"
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
        let builder = match (self.tls_cert, self.tls_key) {
            (None, None) => builder,
            (Some(cert), Some(key)) => with_tls(builder, &cert, &key)?,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        join(builder, self.redis, down_after)
    }
}

#[cfg(feature = "tls")]
fn with_tls(builder: EndpointBuilder, cert: &str, key: &str) -> Result<EndpointBuilder, String> {
    let config = phx_channels::TlsConfig::from_pem_files(cert, key).map_err(|err| err.to_string())?;
    Ok(builder.tls(config))
}

#[cfg(not(feature = "tls"))]
fn with_tls(_: EndpointBuilder, _: &str, _: &str) -> Result<EndpointBuilder, String> {
    Err("--tls-cert and --tls-key need the cargo feature `tls`: build with --features tls (or --all-features)".into())
}

/// The secret every node of an example's cluster shares, so that a long-poll session's
/// token is good on every node. A deployment takes its own from its secret store.
#[cfg(feature = "redis")]
const CLUSTER_SECRET: &str = "phx-channels example cluster: not a secret, replace it in a deployment";

#[cfg(feature = "redis")]
fn join(builder: EndpointBuilder, url: Option<String>, down_after: Duration) -> Result<EndpointBuilder, String> {
    Ok(match url {
        Some(url) => builder.redis(url).node_down_after(down_after).secret_key_base(CLUSTER_SECRET),
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
