//! Breaks verify time into parts for profiling: `cargo run --release -p stele-core --example profile_verify`.
use std::time::Instant;
use stele_core::entry::{Timestamp, ZERO_PREV, entry_line, parse_entry};
use stele_core::hash::leaf_hash;

fn main() {
    let mut lines = Vec::new();
    let mut prev = ZERO_PREV;
    for seq in 0..300_000u64 {
        let ev = serde_json::json!({"actor": format!("user{}", seq % 97), "action": "read", "target": format!("db/table/{}", seq % 1000), "outcome": "success", "request_id": format!("req-{seq:010}"), "ip": "10.0.0.7"});
        let ts = Timestamp::from_unix_micros(1_795_683_600_000_000 + seq as i64 * 1000).unwrap();
        let line = entry_line(seq, ts, &prev, &ev).unwrap();
        prev = leaf_hash(line.as_bytes());
        lines.push(line);
    }
    let mb = lines.iter().map(|l| l.len() + 1).sum::<usize>() as f64 / 1e6;
    let time = |name: &str, f: &dyn Fn() -> usize| {
        let mut best = f64::MAX;
        let mut x = 0;
        for _ in 0..5 {
            let t = Instant::now();
            x += f();
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!("{name:>12}: {:7.0} MB/s ({x})", mb / best);
    };
    time("utf8", &|| {
        lines
            .iter()
            .filter(|l| std::str::from_utf8(l.as_bytes()).is_ok())
            .count()
    });
    time("validate", &|| {
        lines
            .iter()
            .filter(|l| stele_core::canonical::validate(l.as_bytes()).is_ok())
            .count()
    });
    time("parse_entry", &|| {
        lines
            .iter()
            .filter(|l| parse_entry(l.as_bytes()).is_ok())
            .count()
    });
    let mut joined = Vec::new();
    for l in &lines {
        joined.extend_from_slice(l.as_bytes());
        joined.push(b'\n');
    }
    time("stream", &|| {
        let mut v = stele_core::StreamVerifier::new(stele_core::Options::new(vec![]));
        for c in joined.chunks(1 << 20) {
            v.push(c);
        }
        v.finish().entries as usize
    });
    time("leaf_hash", &|| {
        lines
            .iter()
            .map(|l| leaf_hash(l.as_bytes()).0[0] as usize)
            .sum()
    });
}
