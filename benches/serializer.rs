//! Time per message to encode server frames and decode client frames, in each wire
//! format (V1, V2 JSON, V2 binary), for a ~100-byte and a 4 KiB payload, and for a
//! payload of 64 numbers in V2 JSON.
//!
//! Run with `cargo bench --bench serializer` (add `-- --quick` for a fast pass).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phx_channels::serializer::{ClientFrame, RawFrame};
use phx_channels::{Broadcast, Message, Payload, Reply, Serializer};
use serde_json::json;
use std::hint::black_box;

/// A wire format: a serializer and the kind of payload it carries.
#[derive(Clone, Copy)]
enum Format {
    V1,
    V2Json,
    V2Binary,
}

impl Format {
    const ALL: [Format; 3] = [Format::V1, Format::V2Json, Format::V2Binary];

    fn name(self) -> &'static str {
        match self {
            Format::V1 => "v1",
            Format::V2Json => "v2_json",
            Format::V2Binary => "v2_binary",
        }
    }

    fn serializer(self) -> Serializer {
        match self {
            Format::V1 => Serializer::V1,
            Format::V2Json | Format::V2Binary => Serializer::V2,
        }
    }

    /// A payload whose encoding is about `size` bytes: a chat-like JSON object, or bytes.
    fn payload(self, size: usize) -> Payload {
        match self {
            Format::V1 | Format::V2Json => {
                let shell = json!({"user": "alice", "id": 12345, "body": ""}).to_string().len();
                Payload::Json(json!({"user": "alice", "id": 12345, "body": "x".repeat(size - shell)}))
            }
            Format::V2Binary => Payload::from(vec![0xa5; size]),
        }
    }
}

const SIZES: [(&str, usize); 2] = [("100B", 100), ("4KiB", 4096)];

fn message(payload: Payload) -> Message {
    Message {
        join_ref: Some("1".into()),
        msg_ref: Some("42".into()),
        topic: "room:lobby".into(),
        event: "new_msg".into(),
        payload,
    }
}

fn encode(c: &mut Criterion) {
    for format in Format::ALL {
        let serializer = format.serializer();
        let mut group = c.benchmark_group(format!("encode/{}", format.name()));
        for (size_name, size) in SIZES {
            let payload = format.payload(size);
            group.throughput(Throughput::Bytes(size as u64));
            let broadcast = Broadcast::new("room:lobby", "new_msg", payload.clone());
            group.bench_function(format!("broadcast/{size_name}"), |b| {
                b.iter(|| serializer.encode_broadcast(black_box(&broadcast)).unwrap())
            });
            // A server push has no ref of its own (PROTOCOL.md 3.2).
            let push = Message { msg_ref: None, ..message(payload.clone()) };
            group.bench_function(format!("push/{size_name}"), |b| {
                b.iter(|| serializer.encode_push(black_box(&push)).unwrap())
            });
            let reply = Reply {
                join_ref: Some("1".into()),
                msg_ref: Some("42".into()),
                topic: "room:lobby".into(),
                status: "ok".into(),
                response: payload,
            };
            group.bench_function(format!("reply/{size_name}"), |b| {
                b.iter(|| serializer.encode_reply(black_box(&reply)).unwrap())
            });
        }
        group.finish();
    }
}

fn decode(c: &mut Criterion) {
    for format in Format::ALL {
        let serializer = format.serializer();
        let mut group = c.benchmark_group(format!("decode/{}", format.name()));
        for (size_name, size) in SIZES {
            group.throughput(Throughput::Bytes(size as u64));
            let frame = serializer.encode_client(&message(format.payload(size))).unwrap();
            let raw = match &frame {
                ClientFrame::Text(text) => RawFrame::Text(text.as_bytes()),
                ClientFrame::Binary(bytes) => RawFrame::Binary(bytes),
            };
            group.bench_function(format!("client_push/{size_name}"), |b| {
                b.iter(|| serializer.decode(black_box(raw)).unwrap())
            });
        }
        group.finish();
    }
}

/// A payload of 64 numbers, integers and floats: what a number-heavy message costs.
fn numbers(c: &mut Criterion) {
    let values: Vec<serde_json::Value> = (0..64i64)
        .map(|i| if i % 2 == 0 { json!(i * 1_234_567 - 40_000_000) } else { json!(i as f64 * 0.37) })
        .collect();
    let payload = Payload::Json(json!({ "values": values }));
    let serializer = Serializer::V2;
    let mut group = c.benchmark_group("numbers/v2_json");
    let broadcast = Broadcast::new("room:lobby", "new_msg", payload.clone());
    group.bench_function("broadcast/64", |b| b.iter(|| serializer.encode_broadcast(black_box(&broadcast)).unwrap()));
    let ClientFrame::Text(text) = serializer.encode_client(&message(payload)).unwrap() else { unreachable!() };
    group.bench_function("client_push/64", |b| {
        b.iter(|| serializer.decode(black_box(RawFrame::Text(text.as_bytes()))).unwrap())
    });
    group.finish();
}

criterion_group!(benches, encode, decode, numbers);
criterion_main!(benches);
