//! V1 JSON client frames (PROTOCOL.md 3.3), as the server decodes them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phx_channels::Serializer;

fuzz_target!(|data: &[u8]| phx_channels_fuzz::check_client_text(Serializer::V1, data));
