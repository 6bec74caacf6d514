//! One broadcast to 1,000 and 10,000 local subscribers across connections, without the
//! network: registry lookup, encode, and enqueue on every connection. Prints the time
//! per subscriber (criterion's throughput, in elements) and the encodes per broadcast
//! (at most one per wire format: the subscribers alternate V1 and V2).
//!
//! Also prints how long removing 50,000 subscribers of one topic takes (Phoenix users
//! report tens of seconds for that; here each removal is O(1)).
//!
//! `cargo bench --features bench-internals --bench fanout`

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use phx_channels::bench_internals::FanoutFixture;
use phx_channels::{Broadcast, Endpoint};
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

/// Subscribes 50,000 times to one topic, then ends every subscription, in the order
/// they were made and in reverse, and prints the time each removal pass took.
fn unsubscribe_50k(c: &mut Criterion) {
    let endpoint = Endpoint::builder().bind("127.0.0.1:0").start().expect("the endpoint starts");
    for order in ["in order", "in reverse"] {
        let mut subscriptions: Vec<_> = (0..50_000).map(|_| endpoint.subscribe("crowded")).collect();
        if order == "in reverse" {
            subscriptions.reverse();
        }
        let began = Instant::now();
        drop(subscriptions);
        println!("removing 50,000 subscribers of one topic {order}: {:?}", began.elapsed());
        assert_eq!(endpoint.pubsub().subscriber_count("crowded"), 0);
    }
    c.bench_function("subscribe_then_unsubscribe", |b| b.iter(|| drop(endpoint.subscribe("crowded"))));
    endpoint.shutdown();
}

criterion_group!(benches, fanout, unsubscribe_50k);
criterion_main!(benches);
