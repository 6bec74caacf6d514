//! Invariants shared by the fuzz targets: a frame that decodes must survive being
//! encoded again, up to what its format can carry (PROTOCOL.md 3).

use phx_channels::serializer::{ClientFrame, RawFrame, ServerMessage};
use phx_channels::{Broadcast, Message, Ref, Reply, Serializer};

/// Decodes `text` as a client frame; if that works, checks that encoding the message
/// again and decoding that gives the same message.
pub fn check_client_text(serializer: Serializer, text: &[u8]) {
    let Ok(msg) = serializer.decode(RawFrame::Text(text)) else { return };
    let ClientFrame::Text(again) = serializer.encode_client(&msg).expect("a decoded JSON message encodes") else {
        panic!("a JSON payload must encode as a text frame")
    };
    let decoded = serializer.decode(RawFrame::Text(again.as_bytes())).expect("re-encoded frame decodes");
    assert_eq!(decoded, msg, "re-encoded as {again}");
}

/// Decodes `bytes` as a binary client frame; the binary format has one encoding per
/// message, so whatever decodes must encode back to exactly `bytes`.
pub fn check_client_binary(bytes: &[u8]) {
    let Ok(msg) = Serializer::V2.decode(RawFrame::Binary(bytes)) else { return };
    let again = Serializer::V2.encode_client(&msg).expect("a decoded binary message encodes");
    assert_eq!(again, ClientFrame::Binary(bytes.to_vec()));
}

/// Decodes `frame` as a client receives it; if that works, checks that the server
/// encoders turn the result back into a frame that decodes to the same thing.
pub fn check_server(serializer: Serializer, frame: RawFrame<'_>) {
    let Ok(decoded) = serializer.decode_server(frame) else { return };
    if let RawFrame::Binary(bytes) = frame {
        // Canonical, as for client frames: the same bytes come back.
        let again = match decoded {
            ServerMessage::Reply(reply) => serializer.encode_reply(&reply),
            ServerMessage::Message(msg) if bytes[0] == 2 => {
                serializer.encode_broadcast(&Broadcast::new(msg.topic, msg.event, msg.payload))
            }
            ServerMessage::Message(msg) => serializer.encode_push(&msg),
        };
        assert_eq!(again.expect("a decoded binary message encodes").payload(), bytes);
        return;
    }
    // V1 output has no join_ref (P34).
    let carried = |join_ref: &Option<Ref>| if serializer == Serializer::V1 { None } else { join_ref.clone() };
    let (again, expected) = match decoded {
        ServerMessage::Reply(reply) => {
            let join_ref = carried(&reply.join_ref);
            (serializer.encode_reply(&reply), ServerMessage::Reply(Reply { join_ref, ..reply }))
        }
        ServerMessage::Message(msg) => {
            if serializer == Serializer::V2 && !msg.payload.is_pushable() {
                // V2 refuses to push what is not an object (P33); nothing to round-trip.
                assert!(serializer.encode_push(&msg).is_err());
                return;
            }
            let join_ref = carried(&msg.join_ref);
            (serializer.encode_push(&msg), ServerMessage::Message(Message { join_ref, ..msg }))
        }
    };
    let again = again.expect("a decoded JSON message encodes");
    let redecoded = serializer.decode_server(RawFrame::Text(again.payload())).expect("re-encoded frame decodes");
    assert_eq!(redecoded, expected, "re-encoded as {}", String::from_utf8_lossy(again.payload()));
}
