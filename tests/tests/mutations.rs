//! Property tests: a random signed log with one random mutation (byte flip,
//! line deleted, inserted, swapped, duplicated, truncated) is never verified,
//! and a failure names the mutated entry.

use proptest::prelude::*;
use stele_core::checkpoint::SignedCheckpoint;
use stele_core::verify::{Options, Report, Verdict, verify_bytes};
use stele_tests::sample_log;

#[derive(Debug, Clone)]
enum Mutation {
    Flip { entry: usize, byte: usize, bit: u8 },
    Delete(usize),
    Insert { at: usize, copy_of: usize },
    Swap(usize),
    Duplicate(usize),
    Truncate { entry: usize, keep: usize },
}

fn mutation(n: usize) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..n, any::<usize>(), 0u8..8).prop_map(|(entry, byte, bit)| Mutation::Flip {
            entry,
            byte,
            bit
        }),
        (1..n).prop_map(Mutation::Delete),
        (1..n, 0..n).prop_map(|(at, copy_of)| Mutation::Insert { at, copy_of }),
        (1..n - 1).prop_map(Mutation::Swap),
        (0..n).prop_map(Mutation::Duplicate),
        (1..n, any::<usize>()).prop_map(|(entry, keep)| Mutation::Truncate { entry, keep }),
    ]
}

// The export as lines (each with its '\n'); entries are the lines starting with '{'.
fn apply(export: &str, m: &Mutation) -> (Vec<u8>, usize) {
    let mut lines: Vec<Vec<u8>> = export
        .split_inclusive('\n')
        .map(|l| l.as_bytes().to_vec())
        .collect();
    let pos: Vec<usize> = (0..lines.len()).filter(|&i| lines[i][0] == b'{').collect();
    match *m {
        Mutation::Flip { entry, byte, bit } => {
            let l = &mut lines[pos[entry]];
            let i = byte % (l.len() - 1); // never the '\n'
            l[i] ^= 1 << bit;
            (lines.concat(), entry)
        }
        Mutation::Delete(e) => {
            let _ = lines.remove(pos[e]);
            (lines.concat(), e)
        }
        Mutation::Insert { at, copy_of } => {
            let copy = lines[pos[copy_of]].clone();
            lines.insert(pos[at], copy);
            // A copy inserted before its own original is a duplicate of it.
            (lines.concat(), if copy_of == at { at + 1 } else { at })
        }
        Mutation::Swap(e) => {
            lines.swap(pos[e], pos[e + 1]);
            (lines.concat(), e)
        }
        Mutation::Duplicate(e) => {
            let copy = lines[pos[e]].clone();
            lines.insert(pos[e] + 1, copy);
            (lines.concat(), e + 1)
        }
        Mutation::Truncate { entry, keep } => {
            // Cut strictly inside entry `entry`'s line.
            let mut out: Vec<u8> = lines[..pos[entry]].concat();
            let l = &lines[pos[entry]];
            out.extend_from_slice(&l[..1 + keep % (l.len() - 1)]);
            (out, entry)
        }
    }
}

fn names_entry(r: &Report, entry: usize, last: usize) -> bool {
    let e = entry as u64;
    r.failures.iter().any(|f| f.entry == Some(e))
        // A change to the last entry has no later entry to vouch for it: the checkpoint catches it.
        || (entry == last && r.failures.iter().any(|f| f.code == "root_mismatch" || f.code == "truncated"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_mutation_is_caught_at_the_right_entry((n, m) in (3usize..40).prop_flat_map(|n| (Just(n), mutation(n)))) {
        let log = sample_log("example.com/prop", n as u64, 7);
        let export = log.export_log();
        let (data, entry) = apply(&export, &m);
        prop_assume!(data != export.as_bytes());
        let mut opts = Options::new(vec![log.key()]);
        // The auditor kept the latest checkpoint: truncation is a rollback.
        opts.trusted = Some(SignedCheckpoint::parse(log.checkpoints.last().unwrap().1.as_bytes()).unwrap().checkpoint);
        let r = verify_bytes(opts, &data);
        prop_assert_eq!(r.verdict, Verdict::Tampered, "{:?} not caught", m);
        prop_assert!(names_entry(&r, entry, n - 1), "{:?}: no failure names entry {}: {:#?}", m, entry, r.failures);
    }
}
