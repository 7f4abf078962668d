//! The snapshot manifest parser on arbitrary bytes: a manifest whose every file stays inside the
//! snapshot, or an `Error::Snapshot`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    use hydra_bottleneck::source::snapshot;
    let dir = std::path::Path::new("snapshot/manifest.json");
    match snapshot::parse_manifest(data, dir) {
        Ok(m) => {
            for f in m.tables.values().flat_map(|t| &t.files) {
                assert!(
                    !f.path.starts_with('/') && !f.path.split('/').any(|c| c == ".."),
                    "accepted a path leaving the snapshot: {}",
                    f.path
                );
            }
        }
        Err(hydra_bottleneck::Error::Snapshot { .. }) => {}
        Err(e) => panic!("a manifest failed with a non-snapshot error: {e}"),
    }
});
