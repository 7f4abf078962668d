//! The `/metrics` text parser on arbitrary text, and whatever reads what it accepts: an
//! exposition whose rendering reads back as itself, or one error naming a line of the input;
//! a queue runner's exposition read into a status whose kept part reads back as the same
//! status (but for the jobsets, which a series does not count); never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    use hydra_bottleneck::status::{self, exporters, metrics};
    match metrics::parse(text) {
        Ok(e) => {
            let rendered = metrics::render(&e);
            assert_eq!(
                metrics::parse(&rendered).as_ref(),
                Ok(&e),
                "our rendering reads back as the same exposition"
            );
            if let Ok((exp, s)) = exporters::to_status(&e, "fuzz") {
                let f = status::derive(&s, None);
                let _ = status::figures::rows(&f);
                let kept = exporters::record(&e, exp);
                let again = status::parse_metrics(&kept, "fuzz").map(|(_, x, s)| (x, s));
                // A series keeps everything but the jobsets, which it does not count.
                let s = status::Status { jobsets: 0, ..s };
                assert_eq!(again.ok(), Some((exp, s)), "what a series keeps reads back");
            }
        }
        Err(pe) => {
            assert!(
                pe.line >= 1 && pe.line <= text.split('\n').count(),
                "the error's line is in the input"
            );
            assert!(!pe.to_string().contains('\n'), "one line");
        }
    }
});
