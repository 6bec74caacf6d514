//! Endpoint-wide settings, their defaults, and the limits the OS sets on them.

use super::system_limits::{self, SystemLimits};
use crate::logging::DEFAULT_FILTER;
use crate::scheduling::Scheduling;
use crate::telemetry::Telemetry;
use std::sync::Arc;
use std::time::Duration;

/// The channel thread cap where the system's limits cannot be read.
const DEFAULT_MAX_CHANNEL_THREADS: usize = 20_000;
/// The connection cap where the process's descriptor limit cannot be read.
const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// Endpoint-wide settings.
#[derive(Clone, Debug)]
pub(crate) struct EndpointConfig {
    pub(crate) reactors: usize,
    pub(crate) scheduling: Scheduling,
    pub(crate) connect_workers: usize,
    pub(crate) channel_stack_size: usize,
    pub(crate) channel_inbox_limit: usize,
    pub(crate) channel_thread_keep_alive: Duration,
    pub(crate) max_channel_threads: usize,
    /// Whether `max_channel_threads` was set by the user: if not, it is what the system allows.
    pub(crate) max_channel_threads_set: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) filter_parameters: Arc<[String]>,
    pub(crate) registry_shards: usize,
    pub(crate) subscription_capacity: usize,
    pub(crate) presence_window: Duration,
    pub(crate) max_connections: usize,
    /// Whether `max_connections` was set by the user: if not, it is what the system allows.
    pub(crate) max_connections_set: bool,
    pub(crate) max_long_poll_sessions: usize,
    pub(crate) drain_batch_size: usize,
    pub(crate) drain_batch_interval: Duration,
    pub(crate) telemetry: Telemetry,
    /// This node's name; `None` for the default, `<host name>-<process id>`.
    pub(crate) node_name: Option<String>,
}

/// The cores this process may run on (its CPU affinity and quota included).
pub(crate) fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Default for EndpointConfig {
    fn default() -> Self {
        let cores = available_cores();
        EndpointConfig {
            reactors: cores,
            scheduling: Scheduling::default(),
            connect_workers: cores.max(2),
            channel_stack_size: 128 * 1024,
            channel_inbox_limit: 10_000,
            channel_thread_keep_alive: Duration::from_secs(10),
            max_channel_threads: DEFAULT_MAX_CHANNEL_THREADS,
            max_channel_threads_set: false,
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            filter_parameters: DEFAULT_FILTER.iter().map(|w| w.to_string()).collect(),
            registry_shards: 64,
            subscription_capacity: 10_000,
            presence_window: Duration::from_millis(20),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_set: false,
            max_long_poll_sessions: 16_384,
            drain_batch_size: 10_000,
            drain_batch_interval: Duration::from_secs(2),
            telemetry: Telemetry::default(),
            node_name: None,
        }
    }
}

impl EndpointConfig {
    /// Sets the caps left at their defaults to what the system allows, and lowers those
    /// set above it; says which setting to raise, and to what, for a cap set above it.
    pub(crate) fn fit_to_system(&mut self, system: &SystemLimits) {
        if let Some((limit, bound)) = system.thread_bound() {
            if !self.max_channel_threads_set {
                log::info!("at most {limit} channel threads, what this system allows (bound by {bound})");
                self.max_channel_threads = limit;
            } else if self.max_channel_threads > limit {
                log::warn!(
                    "max_channel_threads {} is more than this system allows; using {limit}. To allow {0}, raise {}",
                    self.max_channel_threads,
                    system_limits::list(&system.raise_for_threads(self.max_channel_threads))
                );
                self.max_channel_threads = limit;
            }
        }
        if let Some(limit) = system.connections() {
            if !self.max_connections_set {
                self.max_connections = limit;
            } else if let Some(raise) = system.raise_for_connections(self.max_connections) {
                log::warn!(
                    "max_connections {} is more than this process's open files allow; using {limit}. \
                     To allow {0}, raise {raise}",
                    self.max_connections
                );
                self.max_connections = limit;
            }
        }
    }
}

/// The default node name: the host's name and this process's id, unique on a host and
/// across hosts with distinct names.
pub(crate) fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!("{host}-{}", std::process::id())
}
