//! The `--redis URL` flag of the examples: join the cluster on that Redis when the crate
//! was built with the `redis` feature; refuse, naming the feature, when it was not.

use phx_channels::EndpointBuilder;
use std::time::Duration;

/// Joins the cluster on `url` when it is given; a silent node is taken for gone after
/// `down_after`.
#[cfg(feature = "redis")]
pub fn join(builder: EndpointBuilder, url: Option<String>, down_after: Duration) -> Result<EndpointBuilder, String> {
    Ok(match url {
        Some(url) => builder.redis(url).node_down_after(down_after),
        None => builder,
    })
}

/// Refuses `--redis`: this build has no `redis` feature.
#[cfg(not(feature = "redis"))]
pub fn join(builder: EndpointBuilder, url: Option<String>, _down_after: Duration) -> Result<EndpointBuilder, String> {
    match url {
        Some(_) => {
            Err("--redis needs the cargo feature `redis`: build with --features redis (or --all-features)".into())
        }
        None => Ok(builder),
    }
}
