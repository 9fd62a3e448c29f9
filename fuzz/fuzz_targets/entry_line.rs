//! The entry-line parser and the canonical JSON checker: never panic; a line
//! that parses is canonical, so re-serializing its value gives the same bytes
//! (round trip); and the canonical form of any strict JSON is accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stele_core::canonical::{parse_strict, to_canonical, validate};
use stele_core::entry::{Timestamp, entry_line, parse_entry};

fuzz_target!(|data: &[u8]| {
    let valid = validate(data);
    if let Ok(e) = parse_entry(data) {
        assert!(valid.is_ok(), "parse_entry accepted what validate rejects");
        let text = std::str::from_utf8(data).expect("parsed entries are UTF-8");
        // parse_strict also refuses what a writer must not ingest (I-JSON:
        // integers beyond 2^53-1), which a canonical line may still hold.
        if let Ok(v) = parse_strict(text) {
            assert_eq!(to_canonical(&v).expect("canonical"), text, "round trip");
            // Building the same entry again gives the same bytes.
            let ev: serde_json::Value = parse_strict(e.event_json()).expect("event");
            let again = entry_line(e.seq, e.ts, &e.prev, &ev).expect("rebuilds");
            assert_eq!(again.as_bytes(), data, "entry_line round trip");
        }
        let _ = (e.event_type(), e.field_display("actor"));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(v) = parse_strict(text) {
            if let Ok(c) = to_canonical(&v) {
                if let Err(e) = validate(c.as_bytes()) {
                    // Only the nesting limit may reject a canonical text.
                    assert!(format!("{e:?}").contains("Deep"), "{c:?}: {e:?}");
                }
            }
        }
    }
    if let Some(ts) = Timestamp::parse(data) {
        assert_eq!(ts.to_string().as_bytes(), data, "timestamp round trip");
        assert_eq!(Timestamp::from_unix_micros(ts.unix_micros()), Some(ts));
    }
});
