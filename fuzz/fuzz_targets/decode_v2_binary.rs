//! V2 binary client frames (PROTOCOL.md 3.4), as the server decodes them.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| phx_channels_fuzz::check_client_binary(data));
