//! Inputs the fuzz targets under `fuzz/` found, each pinned by a test.

use phx_channels::Serializer;
use phx_channels::serializer::{ClientFrame, RawFrame};
use serde_json::Value;

/// Found by `decode_v1` within a minute (minimized). Without its `float_roundtrip`
/// feature, which Cargo.toml now turns on, serde_json reads some numbers one ULP off, so
/// a payload the server relays reads back different from what it decoded. Phoenix's
/// JSON decoder is exact.
#[test]
fn a_decoded_payload_survives_re_encoding() {
    let frame = br#"{"event":"","payload":{"":[118446744073709551616]},"ref":null,"topic":""}"#;
    let msg = Serializer::V1.decode(RawFrame::Text(frame)).unwrap();
    let ClientFrame::Text(again) = Serializer::V1.encode_client(&msg).unwrap() else { panic!("JSON is text") };
    assert_eq!(Serializer::V1.decode(RawFrame::Text(again.as_bytes())).unwrap(), msg, "re-encoded as {again}");
}

/// The cause of the above: the number decodes right, serde_json writes it as
/// `1.1844674407370955e+20` (17 digits, which identify it), and then reads that text as a
/// neighbour. A number must decode to the f64 nearest to it, as `str::parse` gives. The
/// second number is one the property tests in `serializer_props.rs` found the same way.
#[test]
fn numbers_decode_to_the_nearest_f64() {
    for number in ["1.1844674407370955e+20", "4.160234625649862e-8"] {
        let frame = format!(r#"[null,null,"t","e",{number}]"#);
        let msg = Serializer::V2.decode(RawFrame::Text(frame.as_bytes())).unwrap();
        assert_eq!(msg.payload.as_json().and_then(Value::as_f64), Some(number.parse::<f64>().unwrap()), "{number}");
    }
}
