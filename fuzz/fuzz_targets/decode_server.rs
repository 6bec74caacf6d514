//! Server frames as the client decodes them. The first byte picks the format, so one
//! corpus covers all three: 0 is V1 text, 1 is V2 text, anything else V2 binary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phx_channels::Serializer;
use phx_channels::serializer::RawFrame;

fuzz_target!(|data: &[u8]| {
    let Some((&format, frame)) = data.split_first() else { return };
    match format {
        0 => phx_channels_fuzz::check_server(Serializer::V1, RawFrame::Text(frame)),
        1 => phx_channels_fuzz::check_server(Serializer::V2, RawFrame::Text(frame)),
        _ => phx_channels_fuzz::check_server(Serializer::V2, RawFrame::Binary(frame)),
    }
});
