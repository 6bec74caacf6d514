//! The test server shared by the integration tests: one socket definition whose
//! channels exercise every behaviour of PROTOCOL.md, helpers to start it on a free
//! port, raw HTTP and raw WebSocket access for what the blocking client cannot do, and
//! counters of the test process's threads and open files.
//!
//! Every test starts its own [`Server`]; dropping it shuts the endpoint down.
//!
//! One file per job: `server` (the standard socket and the test server), `channels`
//! (the channels it routes to), `events` (what they record, and waiting for it),
//! `messages` (client-side message helpers), `http` (raw HTTP), `long_poll` (raw
//! long-poll requests), `raw_ws` (the raw WebSocket), `deflate_ws` (a raw WebSocket that compresses), `logs` and `process` (thread and file counts). This file re-exports
//! them all, so a test's `use common::*;` reaches everything.
#![allow(dead_code)]

mod channels;
mod deflate_ws;
mod events;
mod http;
mod logs;
mod long_poll;
mod messages;
mod process;
mod raw_ws;
mod server;

// Each test binary uses some of these and not others: what one leaves unused is no fault.
#[allow(unused_imports)]
pub use {
    channels::*, deflate_ws::*, events::*, http::*, logs::*, long_poll::*, messages::*, process::*, raw_ws::*,
    server::*,
};
