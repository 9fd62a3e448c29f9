//! Lists the shared test vectors (tests/vectors/*.expect) for the wasm tests,
//! which cannot read files at run time.
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("../tests/vectors");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut out = String::from("&[\n");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    names.sort();
    for expect in names
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "expect"))
    {
        let stem = expect
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default();
        let Some(data) = names.iter().find(|p| {
            p.file_stem().and_then(|s| s.to_str()) == Some(stem)
                && p.extension()
                    .is_some_and(|e| e == "stele" || e == "tlog-proof")
        }) else {
            continue;
        };
        let trusted = dir.join(format!("{stem}.trusted"));
        let trusted = if trusted.exists() {
            format!("Some(include_str!({:?}))", trusted.display().to_string())
        } else {
            "None".into()
        };
        let _ = writeln!(
            out,
            "    ({stem:?}, include_bytes!({:?}) as &[u8], include_str!({:?}), {trusted}),",
            data.display().to_string(),
            expect.display().to_string()
        );
    }
    out.push(']');
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("vectors.rs");
    std::fs::write(dest, out).expect("write vectors.rs");
}
