//! The multi-threaded verifier gives core's report, byte for byte, on every
//! shared test vector, with blocks small enough to cut every vector and any
//! number of threads (this check moved here with `ParallelVerifier` from core).

use stele_core::verify::verify_bytes;
use stele_tests::kit::options;
use stele_tests::vectors::vectors;
use stele_writer::ParallelVerifier;

#[test]
fn parallel_verifier_matches_the_stream_verifier_on_every_vector() {
    let mut n = 0;
    for v in vectors() {
        let report = verify_bytes(options(&v), &v.data);
        // Parts smaller than blocks: several parts a block, which the
        // workers and the waiting caller take from one queue.
        for (threads, block, part, chunk) in [
            (1, 1 << 20, 512 << 10, 4096),
            (3, 700, 512 << 10, 333),
            (2, 64, 512 << 10, 1),
            (2, 4096, 100, 333),
            (1, 4096, 1, 4096),
            (3, 1 << 20, 250, 1000),
        ] {
            let mut p = ParallelVerifier::new(options(&v), threads)
                .block_size(block)
                .part_size(part);
            for c in v.data.chunks(chunk) {
                p.push(c);
            }
            assert_eq!(
                p.finish(),
                report,
                "{}: {threads} threads, blocks of {block}, parts of {part}",
                v.name
            );
        }
        n += 1;
    }
    assert!(n >= 30, "only {n} vectors");
}

#[test]
fn one_verifier_restarted_for_each_stream_gives_each_its_own_report() {
    // A mirror verifies chunk after chunk with one verifier (threads and
    // buffers kept): finish_and_restart must leave nothing of one stream in
    // the next, whatever the cut of the last block.
    for (threads, block, chunk) in [(2, 700, 333), (3, 1 << 20, 4096), (1, 64, 7)] {
        let vs = vectors();
        let mut p = ParallelVerifier::new(options(&vs[0]), threads).block_size(block);
        for (i, v) in vs.iter().enumerate() {
            for c in v.data.chunks(chunk) {
                p.push(c);
            }
            let next = vs.get(i + 1).map_or_else(|| options(v), options);
            assert_eq!(
                p.finish_and_restart(next),
                verify_bytes(options(v), &v.data),
                "{}: {threads} threads, blocks of {block}",
                v.name
            );
        }
    }
}
