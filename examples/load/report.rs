//! What a run reports: latency histograms and their percentiles (as JSON and as a
//! summary line), rounding, the first few errors, and the printed summary followed by
//! the one JSON line.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// A latency histogram in nanoseconds, 1 ns to 100 s, 3 significant digits.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

pub(crate) fn round(x: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (x * p).round() / p
}

/// p50, p90, p99, p99.9 and max, in microseconds.
pub(crate) fn percentiles(h: &Histogram<u64>) -> Value {
    if h.is_empty() {
        return json!(null);
    }
    json!({
        "p50_us": round(us(h.value_at_quantile(0.50)), 2),
        "p90_us": round(us(h.value_at_quantile(0.90)), 2),
        "p99_us": round(us(h.value_at_quantile(0.99)), 2),
        "p999_us": round(us(h.value_at_quantile(0.999)), 2),
        "max_us": round(us(h.max()), 2),
        "mean_us": round(h.mean() / 1000.0, 2),
        "count": h.len(),
    })
}

pub(crate) fn percentile_line(name: &str, h: &Histogram<u64>) -> String {
    if h.is_empty() {
        return format!("{name}: no samples");
    }
    format!(
        "{name}: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.1} µs ({} samples)",
        us(h.value_at_quantile(0.50)),
        us(h.value_at_quantile(0.90)),
        us(h.value_at_quantile(0.99)),
        us(h.value_at_quantile(0.999)),
        us(h.max()),
        h.len()
    )
}

/// First few error messages, for the summary.
#[derive(Default)]
pub(crate) struct ErrorLog {
    count: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl ErrorLog {
    pub(crate) fn add(&self, what: impl Into<String>) {
        self.count.fetch_add(1, Relaxed);
        let mut samples = self.samples.lock().expect("error log lock");
        if samples.len() < 5 {
            samples.push(what.into());
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }

    pub(crate) fn samples(&self) -> Vec<String> {
        self.samples.lock().expect("error log lock").clone()
    }
}

pub(crate) fn emit(summary: &[String], line: Value) {
    for s in summary {
        println!("{s}");
    }
    println!("{line}");
}
