//! `cargo bench -p stele-core`: verify a generated ~100 MB log, and in the
//! same run compute only the leaf hashes and root of the same bytes (the
//! floor). Prints MB/s for both and the ratio verify / floor. The
//! multi-threaded verifier lives in the writer (core has no threads):
//! `stele bench verify` times it beside the same floor and `sha256sum`.
//! `STELE_BENCH_MB` sets the size (default 100).

use criterion::{Criterion, Throughput, criterion_main};
use serde_json::json;
use std::hint::black_box;
use std::time::Instant;
use stele_core::entry::{Timestamp, ZERO_PREV, entry_line, genesis_event};
use stele_core::export::{ExportKind, checkpoint_record, header};
use stele_core::hash::leaf_hash;
use stele_core::merkle::CompactRange;
use stele_core::verify::{Options, StreamVerifier, Verdict};
use stele_core::{Checkpoint, SignerKey};

const CHUNK: usize = 1 << 20;

fn make_log(target: usize) -> (Vec<u8>, SignerKey) {
    let signer = SignerKey::from_seed("bench.example/log", [3; 32]).expect("name");
    let mut out = header(ExportKind::Log).into_bytes();
    let mut tree = CompactRange::new();
    let mut prev = ZERO_PREV;
    let mut seq = 0u64;
    while out.len() < target {
        let ev = if seq == 0 {
            genesis_event("bench.example/log", &signer.verifier().to_string())
        } else {
            json!({"actor": format!("user{}", seq % 97), "action": "read", "target": format!("db/table/{}", seq % 1000), "outcome": "success", "request_id": format!("req-{seq:010}"), "ip": "10.0.0.7"})
        };
        let ts =
            Timestamp::from_unix_micros(1_795_683_600_000_000 + seq as i64 * 1000).expect("ts");
        let line = entry_line(seq, ts, &prev, &ev).expect("line");
        prev = leaf_hash(line.as_bytes());
        tree.push(prev);
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
        seq += 1;
        if seq.is_multiple_of(100_000) {
            push_checkpoint(&mut out, &tree, seq, &signer);
        }
    }
    push_checkpoint(&mut out, &tree, seq, &signer);
    (out, signer)
}

fn push_checkpoint(out: &mut Vec<u8>, tree: &CompactRange, size: u64, signer: &SignerKey) {
    let cp = Checkpoint {
        origin: "bench.example/log".into(),
        size,
        root: tree.root(),
        extensions: vec![],
    };
    out.extend_from_slice(checkpoint_record(&cp.sign(signer).expect("sign")).as_bytes());
}

fn verify(data: &[u8], signer: &SignerKey) {
    let mut v = StreamVerifier::new(Options::new(vec![signer.verifier()]));
    for c in data.chunks(CHUNK) {
        v.push(c);
    }
    let r = v.finish();
    assert_eq!(r.verdict, Verdict::Verified, "{:?}", r.failures.first());
}

// `verify` with the input block's SHA-256 computed in core (Options.input).
fn verify_sha(data: &[u8], signer: &SignerKey) {
    let mut o = Options::new(vec![signer.verifier()]);
    o.input = Some(stele_core::verify::InputMeta {
        sha256: true,
        ..Default::default()
    });
    let mut v = StreamVerifier::new(o);
    for c in data.chunks(CHUNK) {
        v.push(c);
    }
    let r = v.finish();
    assert_eq!(r.verdict, Verdict::Verified, "{:?}", r.failures.first());
    assert!(r.input.and_then(|i| i.sha256).is_some());
}

// The floor: split lines, hash every entry line as a leaf, fold the tree.
fn floor(data: &[u8]) -> stele_core::Hash {
    let mut tree = CompactRange::new();
    for line in data.split(|&b| b == b'\n') {
        if line.first() == Some(&b'{') {
            tree.push(leaf_hash(line));
        }
    }
    tree.root()
}

fn bench(c: &mut Criterion) {
    let mb: usize = std::env::var("STELE_BENCH_MB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let (data, signer) = make_log(mb * 1_000_000);
    let size_mb = data.len() as f64 / 1e6;

    // Interleaved best-of-5 timings for the printed ratio.
    let (mut tv, mut tf, mut ts) = (f64::MAX, f64::MAX, f64::MAX);
    for _ in 0..5 {
        let t = Instant::now();
        verify(&data, &signer);
        tv = tv.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        verify_sha(&data, &signer);
        ts = ts.min(t.elapsed().as_secs_f64());
        let t = Instant::now();
        let _ = black_box(floor(&data));
        tf = tf.min(t.elapsed().as_secs_f64());
    }
    println!("log: {size_mb:.1} MB");
    println!(
        "verify, 1 thread: {:.0} MB/s   floor (leaf hashes + root only), 1 thread: {:.0} MB/s   ratio verify/floor time: {:.2}",
        size_mb / tv,
        size_mb / tf,
        tv / tf
    );
    println!(
        "verify with the input's SHA-256 in core, 1 thread: {:.0} MB/s   ratio to verify: {:.2}",
        size_mb / ts,
        ts / tv
    );

    let mut g = c.benchmark_group("verify_100mb");
    let _ = g.sample_size(10);
    let _ = g.throughput(Throughput::Bytes(data.len() as u64));
    let _ = g.bench_function("verify", |b| b.iter(|| verify(black_box(&data), &signer)));
    let _ = g.bench_function("floor_hash_only", |b| {
        b.iter(|| black_box(floor(black_box(&data))))
    });
    g.finish();
}

/// The benchmark group (what `criterion_group!` would generate, documented).
pub fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

criterion_main!(benches);
