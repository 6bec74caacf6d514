//! One broadcast to 1,000 and 10,000 local subscribers across connections, without the
//! network: registry lookup, encode, and enqueue on every connection. Prints the time
//! per subscriber (criterion's throughput, in elements) and the encodes per broadcast
//! (at most one per wire format: the subscribers alternate V1 and V2).
//!
//! `cargo bench --features bench-internals --bench fanout`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phx_channels::Broadcast;
use phx_channels::bench_internals::FanoutFixture;
use serde_json::json;
use std::time::{Duration, Instant};

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("broadcast");
    for subscribers in [1_000, 10_000] {
        let fixture = FanoutFixture::new(subscribers).expect("the fixture builds");
        let payload = json!({"body": "x".repeat(80), "seq": 1});
        group.throughput(Throughput::Elements(subscribers as u64));
        group.bench_function(format!("{subscribers}_subscribers"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let broadcast = Broadcast::new("bench", "new_msg", payload.clone());
                    let began = Instant::now();
                    fixture.broadcast(broadcast);
                    total += began.elapsed();
                    fixture.drain();
                }
                total
            })
        });
        let before = fixture.encodes();
        fixture.broadcast(Broadcast::new("bench", "new_msg", payload.clone()));
        println!("{subscribers} subscribers (V1 and V2): {} encodes per broadcast", fixture.encodes() - before);
        fixture.drain();
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
