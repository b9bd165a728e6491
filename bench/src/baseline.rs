//! Baselines measured in the same run as the engine, so a target is a ratio to what this
//! machine allows (machines of this kind differ by up to 3x in raw speed): the filter-map work
//! as a plain single-threaded loop, a bare channel hop between two tasks, and a CPU probe.

use std::time::Instant;

use compact_str::CompactString;
use flow_model::{Record, Value};

/// Generates the records `filter_map_flow` generates (same `Record` type, field order and
/// values: fields in name order, the random ages from the same seed), keeps the active ones and
/// renames `name` to `full_name`, in one loop on one thread with no channels. Returns the
/// seconds it took.
pub(crate) fn native_filter_map(rows: u64) -> f64 {
    let started = Instant::now();
    let mut rng = fastrand::Rng::with_seed(42);
    let statuses = [Value::from("active"), Value::from("inactive")];
    for n in 0..rows {
        if let Some(r) = filter_map_one(n, &mut rng, &statuses) {
            std::hint::black_box(&r);
        }
    }
    started.elapsed().as_secs_f64()
}

/// Record number `n` of the generated users, kept and renamed when active.
fn filter_map_one(n: u64, rng: &mut fastrand::Rng, statuses: &[Value; 2]) -> Option<Record> {
    let mut r = Record::with_capacity(4);
    r.push_unchecked("age".into(), Value::Int(rng.i64(18..=90)));
    r.push_unchecked("id".into(), Value::Int(1 + n as i64));
    let mut name = CompactString::const_new("user-");
    name.push_str(itoa::Buffer::new().format(n));
    r.push_unchecked("name".into(), Value::String(name));
    r.push_unchecked("status".into(), statuses[(n % 2) as usize].clone());
    if r.get("status").and_then(Value::as_str) != Some("active") {
        return None;
    }
    r.rename("name", "full_name");
    Some(r)
}

/// The records the native loop keeps, for checking they are the engine's.
#[cfg(test)]
pub(crate) fn native_records(rows: u64) -> Vec<Record> {
    let mut rng = fastrand::Rng::with_seed(42);
    let statuses = [Value::from("active"), Value::from("inactive")];
    (0..rows).filter_map(|n| filter_map_one(n, &mut rng, &statuses)).collect()
}

/// Microseconds per send + receive of a one-record batch over a bounded tokio channel between
/// two tasks (the hop an edge of a flow costs at the least).
pub(crate) async fn channel_hop_us(hops: u32) -> f64 {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Record>>(4);
    let record: Record = [("x".into(), Value::Int(1))].into_iter().collect();
    let started = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut n = 0u32;
        while let Some(batch) = rx.recv().await {
            std::hint::black_box(batch);
            n += 1;
        }
        n
    });
    for _ in 0..hops {
        if tx.send(vec![record.clone()]).await.is_err() {
            break;
        }
    }
    drop(tx);
    let received = receiver.await.unwrap_or(0);
    started.elapsed().as_secs_f64() * 1e6 / f64::from(received.max(1))
}

/// Milliseconds for 100M steps of a xorshift generator: one line that tells how fast this
/// machine's core is, to compare runs on different machines.
pub(crate) fn cpu_probe_ms() -> f64 {
    let started = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..100_000_000u32 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    std::hint::black_box(x);
    started.elapsed().as_secs_f64() * 1e3
}
