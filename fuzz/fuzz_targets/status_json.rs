//! The queue-runner status parser (one document), the Rust runner's queue listing
//! (`/status/queues`) and the `--watch` series reader (JSON lines) on arbitrary text, and the
//! figures derived from whatever parses: no panic anywhere.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    use hydra_bottleneck::status;
    if let Ok(mut s) = status::parse(text, "fuzz") {
        if let Ok(w) = status::queues::parse(text, "fuzz", "main", 1.78e9) {
            s.waits = w;
        }
        let f = status::derive(&s, None);
        let _ = status::figures::rows(&f);
    }
    let series = status::series::parse(text, "fuzz");
    let summary = status::summarise(&series, None);
    let _ = status::series::rows(&summary);
});
