//! Endpoint-wide settings, their defaults, and the limits the OS sets on them.

use crate::logging::DEFAULT_FILTER;
use crate::scheduling::Scheduling;
use crate::telemetry::Telemetry;
use std::sync::Arc;
use std::time::Duration;

/// Endpoint-wide settings.
#[derive(Clone, Debug)]
pub(crate) struct EndpointConfig {
    pub(crate) reactors: usize,
    pub(crate) scheduling: Scheduling,
    pub(crate) connect_workers: usize,
    pub(crate) channel_stack_size: usize,
    pub(crate) channel_inbox_limit: usize,
    pub(crate) max_channel_threads: usize,
    /// Whether `max_channel_threads` was set by the user (only then is clamping it worth a warning).
    pub(crate) max_channel_threads_set: bool,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_header_bytes: usize,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) filter_parameters: Arc<[String]>,
    pub(crate) registry_shards: usize,
    pub(crate) subscription_capacity: usize,
    pub(crate) presence_window: Duration,
    pub(crate) max_connections: usize,
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
            max_channel_threads: 20_000,
            max_channel_threads_set: false,
            handshake_timeout: Duration::from_secs(10),
            max_header_bytes: 16 * 1024,
            shutdown_timeout: Duration::from_secs(30),
            filter_parameters: DEFAULT_FILTER.iter().map(|w| w.to_string()).collect(),
            registry_shards: 64,
            subscription_capacity: 10_000,
            presence_window: Duration::from_millis(20),
            max_connections: 16_384,
            max_long_poll_sessions: 16_384,
            drain_batch_size: 10_000,
            drain_batch_interval: Duration::from_secs(2),
            telemetry: Telemetry::default(),
            node_name: None,
        }
    }
}

impl EndpointConfig {
    /// Lowers the channel thread cap to what the OS allows this process, if it is less.
    pub(crate) fn clamp_to_os(&mut self) {
        let Some(limit) = os_thread_limit() else { return };
        if self.max_channel_threads <= limit {
            return;
        }
        if self.max_channel_threads_set {
            log::warn!(
                "max_channel_threads {} is more than this system allows ({limit}: see vm.max_map_count, \
                 kernel.pid_max, kernel.threads-max); using {limit}",
                self.max_channel_threads
            );
        } else {
            log::info!(
                "at most {limit} channel threads, which is what this system allows (see vm.max_map_count, \
                 kernel.pid_max, kernel.threads-max), not the default {}",
                self.max_channel_threads
            );
        }
        self.max_channel_threads = limit;
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

/// The channel threads this system lets one process have, with room left for
/// everything else: each thread takes a pid and four memory mappings.
fn os_thread_limit() -> Option<usize> {
    let read = |path: &str| std::fs::read_to_string(path).ok()?.trim().parse::<usize>().ok();
    let by_maps = read("/proc/sys/vm/max_map_count").map(|maps| maps.saturating_sub(4096) / 4);
    let by_pids = read("/proc/sys/kernel/pid_max").map(|pids| pids.saturating_sub(2048));
    let by_threads = read("/proc/sys/kernel/threads-max").map(|threads| threads / 2);
    [by_maps, by_pids, by_threads].into_iter().flatten().min()
}
