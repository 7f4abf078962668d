//! The narinfo parser on arbitrary text: the fields or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let _ = hydra_bottleneck::compress::input::parse_narinfo(text, "fuzz.narinfo");
});
